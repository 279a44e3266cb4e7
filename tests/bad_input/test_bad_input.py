"""A deterministic sample of the bad-input suite (up to 8 inputs of every kind, about 190) against a live server.
The whole set (650+ inputs): CCB_SOAK=1 .venv/bin/pytest tests/soak/test_bad_input_soak.py (see bad_input_runner)."""

from __future__ import annotations

import pytest
from bad_input_kit import LiveApp
from bad_input_requests import RequestCase
from bad_input_runner import (
    HEAVY_KINDS,
    REQUEST_CASES,
    SOURCE_CASES,
    check_request_case,
    check_source_case,
    fast_sample,
    params,
)
from bad_input_sources import SourceCase

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("case", params(fast_sample(SOURCE_CASES)))
def test_a_bad_source_fails_alone(case: SourceCase, live: LiveApp) -> None:
    check_source_case(case, live)


@pytest.mark.parametrize("case", params(fast_sample(REQUEST_CASES)))
def test_a_bad_request_is_refused(case: RequestCase, live: LiveApp) -> None:
    check_request_case(case, live)


def test_the_whole_set_has_at_least_300_inputs_and_the_sample_every_kind() -> None:
    assert len(SOURCE_CASES) + len(REQUEST_CASES) >= 300
    kinds = {case.kind for case in SOURCE_CASES} | {case.kind for case in REQUEST_CASES}
    sampled = {case.kind for case in fast_sample(SOURCE_CASES)} | {case.kind for case in fast_sample(REQUEST_CASES)}
    assert sampled | HEAVY_KINDS == kinds
