"""GET /heartbeat on a fresh connection every INTERVAL seconds, as AppAPI and Docker's HEALTHCHECK ask it, from a
process of its own so the load generator's event loop cannot delay (or hide) a slow answer.

    python heartbeat_prober.py BASE_URL INTERVAL_S DURATION_S OUT.json

OUT.json: {"latencies_ms": [...], "failures": ["<what went wrong>", ...]}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx


def probe(base_url: str, interval_s: float, duration_s: float) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.monotonic() + duration_s
    next_probe = time.monotonic()
    # one client (building one costs ~100 ms of SSL set-up), no keep-alive: every probe connects anew
    with httpx.Client(base_url=base_url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        while next_probe < deadline:
            started = time.perf_counter()
            try:
                response = http.get("/heartbeat")
                elapsed_ms = (time.perf_counter() - started) * 1000
                if response.status_code == 200 and response.json() == {"status": "ok"}:
                    latencies.append(elapsed_ms)
                else:
                    failures.append(f"HTTP {response.status_code} after {elapsed_ms:.0f} ms: {response.text[:200]}")
            except httpx.HTTPError as exc:
                failures.append(f"{type(exc).__name__} after {(time.perf_counter() - started) * 1000:.0f} ms: {exc}")
            next_probe += interval_s
            time.sleep(max(0.0, next_probe - time.monotonic()))
    return latencies, failures


def main(args: list[str]) -> None:
    base_url, interval_s, duration_s, out = args
    latencies, failures = probe(base_url, float(interval_s), float(duration_s))
    Path(out).write_text(json.dumps({"latencies_ms": latencies, "failures": failures}))


if __name__ == "__main__":
    main(sys.argv[1:])
