"""Bad-input fixtures: one live server for the whole suite, and a summary of the outcomes per kind of input."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "contract"))
sys.path.insert(0, str(TESTS / "loaders"))

from bad_input_kit import RESULTS, LiveApp, summary_lines  # noqa: E402
from bad_input_runner import bad_input_server  # noqa: E402

from appliance.postgres import EmbeddedPostgres  # noqa: E402


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pg_cluster: EmbeddedPostgres, embedder_url: str
) -> Iterator[LiveApp]:
    with bad_input_server(tmp_path_factory.mktemp("bad-input"), pg_cluster, embedder_url) as app:
        yield app


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Inputs tried, outcomes per kind, worst stall and peak RSS: the figures of the README's reliability section."""
    if RESULTS:
        terminalreporter.section("bad input")
        for line in summary_lines(RESULTS):
            terminalreporter.write_line(line)
