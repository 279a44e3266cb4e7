"""The live server the bad-input suite drives, and what it measures per input: answer, event-loop stall, RSS, time."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from bad_input_http import RawRequest, RawResponse, send
from contract_kit import signed_headers
from live_app import start_live_app
from server_process import ServerProcess

from appliance.postgres import EmbeddedPostgres

MIB = 1024 * 1024
# small limits so the oversized inputs stay small; the timeout bounds a parser that loops
INGEST_LIMITS = {"parse_workers": 1, "max_part_mb": 3, "max_request_mb": 12, "parse_timeout_s": 20}
# an input answered later than this counts as a hang
REQUEST_TIMEOUT_S = 60.0
_databases = itertools.count(1)


@contextmanager
def scratch_database(cluster: EmbeddedPostgres) -> Iterator[str]:
    """A new database with the vector extension, owned by the app role, dropped afterwards."""
    name = f"bad_input_{next(_databases)}_{os.getpid()}"
    admin = f"postgresql://postgres@/postgres?host={cluster.socket_dir}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER ccb')
    with psycopg.connect(f"postgresql://postgres@/{name}?host={cluster.socket_dir}", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    try:
        yield f"postgresql://ccb@/{name}?host={cluster.socket_dir}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RssSampler:
    """Samples VmRSS of one process every 20 ms in a thread: the overall peak and the peak since `mark()`."""

    def __init__(self, pid: int) -> None:
        self._path = Path(f"/proc/{pid}/status")
        self.peak_kb = 0
        self.window_peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def rss_kb(self) -> int:
        try:
            text = self._path.read_text()
        except OSError:
            return 0
        line = next(line for line in text.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            rss = self.rss_kb()
            self.peak_kb = max(self.peak_kb, rss)
            self.window_peak_kb = max(self.window_peak_kb, rss)

    def mark(self) -> int:
        """Start a new window; the RSS now (kB)."""
        self.window_peak_kb = self.rss_kb()
        return self.window_peak_kb

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Result:
    """One input's outcome, for the summary at the end of the run."""

    name: str
    kind: str
    outcome: str
    status: int
    stall_ms: float
    lag_ms: float
    rss_peak_mb: float
    rss_growth_mb: float
    seconds: float


# every input's result in this run, in order (summed up at the end of the run)
RESULTS: list[Result] = []


def summary_lines(results: list[Result]) -> list[str]:
    """Inputs tried, outcomes per kind, the worst stall, RSS and time: the figures the README cites."""
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for result in results:
        by_kind[result.kind][result.outcome] += 1
    lines = [
        f"{kind:20s} {sum(outcomes.values()):4d}  " + ", ".join(f"{o} {n}" for o, n in sorted(outcomes.items()))
        for kind, outcomes in sorted(by_kind.items())
    ]
    worst = max(results, key=lambda r: r.stall_ms)
    laggiest = max(results, key=lambda r: r.lag_ms)
    heaviest = max(results, key=lambda r: r.rss_peak_mb)
    grower = max(results, key=lambda r: r.rss_growth_mb)
    slowest = max(results, key=lambda r: r.seconds)
    lines += [
        f"inputs tried: {len(results)}, answered in {sum(r.seconds for r in results):.0f} s",
        f"worst event-loop stall: {worst.stall_ms:.0f} ms ({worst.name}), less the CPU wait of a loaded machine",
        f"worst event-loop lag, load included: {laggiest.lag_ms:.0f} ms ({laggiest.name})",
        f"peak app RSS: {heaviest.rss_peak_mb:.0f} MB ({heaviest.name})",
        f"largest RSS rise for one input: {grower.rss_growth_mb:.0f} MB ({grower.name})",
        f"slowest input: {slowest.seconds:.1f} s ({slowest.name})",
    ]
    report = os.environ.get("CCB_BAD_INPUT_REPORT")
    if report:
        Path(report).write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))
        lines.append(f"every input's figures: {report}")
    return lines


@dataclass(frozen=True)
class Measured:
    """One input's answer and what it cost the server while it was handled."""

    response: RawResponse
    seconds: float
    # worst event-loop stall (GET /status recent_stalls, lags >= 50 ms) that ended while the input was handled, less
    # the time the loop's thread waited for a CPU (the machine's load); 0 if none
    stall_ms: float
    # the same stall's whole lag, load included
    lag_ms: float
    rss_peak_mb: float
    # how far RSS rose above its level when the input arrived
    rss_growth_mb: float


class LiveApp:
    """The app served by hypercorn in its own process, enabled, with a signed JSON helper and the measurements."""

    def __init__(self, base: str, port: int, server: ServerProcess, storage: Path, rss: RssSampler) -> None:
        self.base = base
        self.port = port
        self.server = server
        self.storage = storage
        self.rss = rss
        self.http = httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S)
        # source ids GET /status has listed as failed so far (every input's bad source id is new)
        self.seen_failures: set[str] = set()

    def call(self, method: str, path: str, body: Any = None, user: str = "") -> tuple[int, Any]:
        response = self.http.request(method, path, json=body, headers=signed_headers(user))
        try:
            return response.status_code, response.json()
        except json.JSONDecodeError:
            return response.status_code, response.text

    def status(self) -> dict[str, Any]:
        code, report = self.call("GET", "/status")
        assert code == 200, report
        assert isinstance(report, dict)
        return report

    def send(self, request: RawRequest) -> RawResponse:
        return send(self.port, request, REQUEST_TIMEOUT_S)

    def log_size(self) -> int:
        log_path: Path = self.server.log_path
        return log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        log_path: Path = self.server.log_path
        with log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", errors="replace")

    def measure(self, handle: Callable[[], RawResponse]) -> Measured:
        """Run `handle` (one input and the checks that read its effects) and measure the server meanwhile."""
        rss_before = self.rss.mark()
        started_wall, started = time.time(), time.monotonic()
        response = handle()
        seconds = time.monotonic() - started
        event_loop = self.status()["event_loop"]
        stalls = [s for s in event_loop["recent_stalls"] if s["at"] >= started_wall]
        worst = max(stalls, key=lambda s: s["lag_ms"] - s["cpu_wait_ms"], default={"lag_ms": 0.0, "cpu_wait_ms": 0.0})
        peak = self.rss.window_peak_kb
        own = worst["lag_ms"] - worst["cpu_wait_ms"]
        return Measured(response, seconds, own, worst["lag_ms"], peak / 1024, (peak - rss_before) / 1024)


@contextmanager
def live_app(workdir: Path, dsn: str, embedder_url: str) -> Iterator[LiveApp]:
    """The app server (`python -m quart_app.app_server`) on the real database and embedder, enabled by AppAPI."""
    storage = workdir / "storage"
    config = {
        "embedding": {"base_url": embedder_url, "workers": 1, "chunk_tokens": 96},
        "embedding_worker": {"idle_poll_s": 0.2},
        "llm": {"extractive": {}},
        "ingest": INGEST_LIMITS,
    }
    base, server = start_live_app(storage, dsn, config, workdir / "server.log")
    port = int(base.rsplit(":", 1)[1])
    try:
        assert server.process is not None
        with RssSampler(server.process.pid) as rss:
            app = LiveApp(base, port, server, storage, rss)
            assert app.call("PUT", "/enabled?enabled=1") == (200, {"error": ""})
            yield app
            app.http.close()
    finally:
        server.stop()
