"""Load soak: 20 clients mixing /loadSources, /query and /docSearch for 5 minutes against the whole appliance;
zero 5xx, every request answered, /heartbeat p99 under 200 ms. Figures go to bench/results/load.txt.

    CCB_SOAK=1 .venv/bin/pytest tests/soak/test_load_soak.py -s
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from load_clients import ROUTES, LoadFigures, percentile
from load_scenario import run_load_scenario

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
CLIENTS = 20
DURATION_S = 300
PRELOADED = 200


@pytest.fixture(scope="module")
def load_run() -> Iterator[LoadFigures]:
    root = Path(tempfile.mkdtemp(prefix="ccb-soak-", dir="/tmp"))
    try:
        results = REPO / "bench" / "results" / "load.txt"
        yield run_load_scenario(root, CLIENTS, DURATION_S, PRELOADED, results, "tests/soak/test_load_soak.py")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_every_request_is_answered_without_a_5xx(load_run: LoadFigures) -> None:
    assert load_run.server_errors == []
    assert load_run.unanswered == []
    assert {sample.route for sample in load_run.samples} == set(ROUTES)


def test_heartbeat_stays_fast_under_load(load_run: LoadFigures) -> None:
    assert load_run.heartbeat_failures == []
    assert percentile(load_run.heartbeat_ms, 99) < 200
