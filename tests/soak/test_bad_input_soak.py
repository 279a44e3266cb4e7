"""The whole bad-input set (650+ generated inputs, tests/bad_input has the fast sample) against a live server:

    CCB_SOAK=1 .venv/bin/pytest tests/soak/test_bad_input_soak.py

Same checks as the sample, on every input.
CCB_BAD_INPUT_REPORT=<file> also writes every input's figures (outcome, stall, RSS, time) as JSON.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in ("contract", "loaders", "bad_input"):
    sys.path.insert(0, str(TESTS / folder))

from bad_input_kit import RESULTS, LiveApp, summary_lines  # noqa: E402
from bad_input_requests import RequestCase  # noqa: E402
from bad_input_runner import (  # noqa: E402
    REQUEST_CASES,
    SOURCE_CASES,
    bad_input_server,
    check_request_case,
    check_source_case,
    params,
)
from bad_input_sources import SourceCase  # noqa: E402

from appliance.postgres import EmbeddedPostgres  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("CCB_SOAK") != "1", reason="the long bad-input run: set CCB_SOAK=1"),
]


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    pg_cluster: EmbeddedPostgres,
    embedder_url: str,
    pytestconfig: pytest.Config,
) -> Iterator[LiveApp]:
    first = len(RESULTS)
    with bad_input_server(tmp_path_factory.mktemp("bad-input-soak"), pg_cluster, embedder_url) as app:
        yield app
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and RESULTS[first:]:
        with capture.global_and_fixture_disabled():  # a fixture's teardown output is captured otherwise
            reporter.section("bad input, whole set")
            for line in summary_lines(RESULTS[first:]):
                reporter.write_line(line)


@pytest.mark.parametrize("case", params(SOURCE_CASES))
def test_a_bad_source_fails_alone(case: SourceCase, live: LiveApp) -> None:
    check_source_case(case, live)


@pytest.mark.parametrize("case", params(REQUEST_CASES))
def test_a_bad_request_is_refused(case: RequestCase, live: LiveApp) -> None:
    check_request_case(case, live)
