"""Load suite, fast subset: 20 clients mixing /loadSources, /query and /docSearch for 20 s against the whole
appliance, a heartbeat prober beside them. The 5-minute run (with the heartbeat p99 bound) is
tests/soak/test_load_soak.py; a timed bound on a shared CI box would flake, so here the figures are printed only."""

from __future__ import annotations

from pathlib import Path

import pytest
from load_clients import ROUTES
from load_scenario import run_load_scenario

pytestmark = pytest.mark.slow


def test_twenty_clients_get_an_answer_to_every_request_and_no_5xx(stack_root: Path, tmp_path: Path) -> None:
    figures = run_load_scenario(stack_root, 20, 20, 40, tmp_path / "load.txt", "tests/reliability/test_load.py")
    assert figures.server_errors == []
    assert figures.unanswered == []
    assert figures.heartbeat_failures == []
    assert {sample.route for sample in figures.samples} == set(ROUTES)
    assert figures.heartbeat_ms
