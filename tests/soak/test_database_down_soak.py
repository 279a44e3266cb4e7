"""Database down, long run: the real server under push traffic while its PostgreSQL goes away again and again,
alternately by fast shutdown and by kill -9 of the postmaster. Run it with

    CCB_SOAK=1 .venv/bin/pytest tests/soak/test_database_down_soak.py -s

(CCB_SOAK_DB_CYCLES outages, default 6; CCB_SOAK_DB_DOCUMENTS documents, default 200). The fast subset is
tests/contract/test_database_down.py."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))

from database_down_kit import PushTraffic, store_report, unclear_refusals
from live_app_kit import running_live_app
from restartable_postgres import RestartablePostgres
from server_process import ServerProcess
from waiting import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("CCB_SOAK") != "1", reason="soak run: CCB_SOAK=1 .venv/bin/pytest tests/soak"),
]
CYCLES = int(os.environ.get("CCB_SOAK_DB_CYCLES", "6"))
DOCUMENTS = int(os.environ.get("CCB_SOAK_DB_DOCUMENTS", "200"))
ROUTES = ("/loadSources", "/query", "/updateAccess")


@pytest.fixture
def soak_app(
    tmp_path: Path, restartable_pg: RestartablePostgres, embedder_url: str
) -> Iterator[tuple[str, ServerProcess]]:
    with running_live_app(tmp_path, restartable_pg.test_dsn, embedder_url) as app:
        yield app


def _acknowledged(traffic: PushTraffic, goal: int) -> Callable[[], bool]:
    return lambda: len(traffic.acknowledged) >= goal


def _refused_everywhere(traffic: PushTraffic, since: float) -> Callable[[], bool]:
    """Every kind of request met the outage that began at `since` (3 times each)."""
    return lambda: all(traffic.count(route, 503, since) >= 3 for route in ROUTES)


def test_repeated_outages_under_traffic_lose_nothing(
    soak_app: tuple[str, ServerProcess], restartable_pg: RestartablePostgres
) -> None:
    base, server = soak_app
    traffic = PushTraffic(base, restartable_pg.test_dsn, DOCUMENTS)
    outages: list[tuple[str, float, float]] = []
    traffic.start()
    try:
        for cycle in range(CYCLES):
            goal = min(DOCUMENTS - 1, len(traffic.acknowledged) + max(1, DOCUMENTS // (CYCLES + 1)))
            wait_for(_acknowledged(traffic, goal), 300, f"{goal} documents acknowledged")
            how = "kill -9" if cycle % 2 else "fast shutdown"
            stopped = time.time()
            if cycle % 2:
                restartable_pg.kill()
            else:
                restartable_pg.stop_fast()
            wait_for(_refused_everywhere(traffic, stopped), 120, "503s on every route")
            restartable_pg.start()
            outages.append((how, stopped, time.time()))
        wait_for(lambda: traffic.done, 600, "every document acknowledged and shared")
    finally:
        traffic.join()
    outcomes = traffic.outcomes
    assert [o for o in outcomes if o.status not in (200, 503)] == []
    refused = [o for o in outcomes if o.status == 503]
    assert unclear_refusals(outcomes) == []
    assert all(o.status == 200 for o in outcomes if o.route == "/heartbeat")
    recoveries = [
        min(o.at for o in outcomes if o.route == "/query" and o.status == 200 and o.at > back) - back
        for _how, _down, back in outages
    ]
    assert server.process is not None and server.process.poll() is None
    wait_for(
        lambda: store_report(restartable_pg.test_dsn)["unembedded_chunks"] == 0, 600, "the embedding queue drained"
    )
    report = store_report(restartable_pg.test_dsn)
    assert report["documents"] == sorted(traffic.acknowledged) and len(report["documents"]) == DOCUMENTS
    assert report["duplicated_sources"] == 0
    assert report["bob"] == sorted(traffic.shared)
    assert "Traceback" not in server.log_text()
    down = sum(back - stopped for _how, stopped, back in outages)
    print(
        f"{len(outages)} outages ({', '.join(how for how, _s, _b in outages)}), {down:.0f} s down in all; "
        f"{len(refused)} answers 503 + cc-retry, 0 other errors; {DOCUMENTS} documents acknowledged, all stored once "
        f"and embedded; {len(outcomes)} requests; slowest recovery {max(recoveries):.1f} s after PostgreSQL was back"
    )
