"""How long a request waits for its 503 when PostgreSQL goes away, with the shipped pool settings (acquire 30 s).

    .venv/bin/python bench/database_outage_wait.py [--rounds 2]

Starts a restartable embedded PostgreSQL (the tests' kit), the embedder program and the real app server on it,
indexes one document, then per round stops PostgreSQL (fast shutdown) and times, one after the other: the first
request nobody has made since (GET /status, which finds the outage), then GET /status, POST /query, PUT /loadSources
and POST /updateAccess while the outage is known; then starts PostgreSQL again and waits for a 200. Writes the table
to bench/results/database_outage_wait.txt.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests"), str(REPO / "tests" / "contract")]

from bench_services import start_embedder, stop, write_report  # noqa: E402  # after the sys.path line
from contract_kit import SourcePart, guzzle_multipart, signed_headers  # noqa: E402
from live_app_kit import running_live_app  # noqa: E402
from restartable_postgres import RestartablePostgres  # noqa: E402

# the shipped vectordb section: only the pool size is the tests' (the acquire timeout stays 30 s)
SHIPPED_POOL = {"pgvector": {"pool_max": 6}}
TEXT = b"The harbour crane is rented by the hour; the invoice goes to the port authority."


def _timed(http: httpx.Client, method: str, path: str, **kwargs: object) -> tuple[int, float]:
    """(status, milliseconds) of one request."""
    started = time.monotonic()
    response = http.request(method, path, **kwargs)  # type: ignore[arg-type]
    return response.status_code, (time.monotonic() - started) * 1000


def _requests(source_id: str) -> list[tuple[str, str, str, dict[str, object]]]:
    """(label, method, path, httpx kwargs) of the requests timed while the outage is known."""
    body, content_type = guzzle_multipart([SourcePart(source_id, TEXT, user_ids=("alice",))])
    return [
        ("GET /status", "GET", "/status", {"headers": signed_headers()}),
        (
            "POST /query",
            "POST",
            "/query",
            {"json": {"userId": "alice", "query": "who rents the crane?"}, "headers": signed_headers("alice")},
        ),
        (
            "PUT /loadSources",
            "PUT",
            "/loadSources",
            {"content": body, "headers": {**signed_headers(), "Content-Type": content_type}},
        ),
        (
            "POST /updateAccess",
            "POST",
            "/updateAccess",
            {"json": {"op": "allow", "userIds": ["bob"], "sourceId": source_id}, "headers": signed_headers()},
        ),
    ]


def measure(base: str, server: RestartablePostgres, rounds: int) -> list[str]:
    lines = [f"{'round':>5}  {'request':<34} {'status':>6} {'ms':>8}"]
    with httpx.Client(base_url=base, timeout=120) as http:
        first = _requests("files__default: 1")[2]
        assert http.request(first[1], first[2], **first[3]).status_code == 200  # type: ignore[arg-type]
        for round_no in range(1, rounds + 1):
            server.stop_fast()
            status, ms = _timed(http, "GET", "/status", headers=signed_headers())
            lines.append(f"{round_no:>5}  {'GET /status (outage not yet known)':<34} {status:>6} {ms:>8.0f}")
            for label, method, path, kwargs in _requests(f"files__default: {round_no + 1}"):
                status, ms = _timed(http, method, path, **kwargs)
                lines.append(f"{round_no:>5}  {label + ' (known)':<34} {status:>6} {ms:>8.0f}")
            server.start()
            deadline = time.monotonic() + 120
            while http.get("/status", headers=signed_headers()).status_code != 200:
                assert time.monotonic() < deadline, "the app did not recover within 120 s"
                time.sleep(0.2)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    server = RestartablePostgres()
    with tempfile.TemporaryDirectory(prefix="ccb-bench-outage-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        embedder_url, embedder = start_embedder(root)
        try:
            server.start()
            with running_live_app(root, server.dsn, embedder_url, vectordb=SHIPPED_POOL) as (base, _app):
                lines = measure(base, server, args.rounds)
        finally:
            stop(embedder)
            server.remove()
    write_report(lines, REPO / "bench" / "results" / "database_outage_wait.txt")


if __name__ == "__main__":
    main()
