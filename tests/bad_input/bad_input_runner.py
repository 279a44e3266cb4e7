"""The bad-input suite's cases and checks, shared by the fast sample (tests/bad_input) and the whole set
(tests/soak/test_bad_input_soak.py): each input gets a clear 4xx or a per-source error, never a 5xx or a hang; the
good source sent beside a bad one loads and is searchable; the event loop never stalls over 100 ms (GET /status
event_loop.recent_stalls) and the app process's RSS stays bounded (VmRSS sampled every 20 ms)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from bad_input_http import RawRequest
from bad_input_kit import RESULTS, LiveApp, Measured, Result, live_app, scratch_database
from bad_input_parts import header_cases, source_id_cases
from bad_input_requests import (
    RequestCase,
    http_headers,
    malformed_json,
    megabyte_questions,
    multipart_framing,
    oversized_json,
    query_values,
    signed,
    slow_clients,
    too_many_parts,
    unicode_ids,
    wrong_types,
)
from bad_input_sources import (
    FAILED,
    LOADED,
    REFUSED,
    SourceCase,
    bombs,
    mislabelled,
    multipart,
    office_and_pdf,
    part,
    xxe_cases,
)
from bad_input_sources import pathological_text as pathological

from appliance.postgres import EmbeddedPostgres

C = TypeVar("C", SourceCase, RequestCase)

# the bound, on the lag the app's monitor measures less the time its loop waited for a CPU (a stall of d shows
# as a lag between d - 20 ms and d)
STALL_LIMIT_MS = 100.0
# an input may raise the app's RSS by this much (its text, tokens and chunks in flight), not more
RSS_GROWTH_LIMIT_MB = 150.0
SECRET = Path(tempfile.gettempdir()) / f"ccb-bad-input-secret-{os.getpid()}.txt"
SECRET_MARKER = "xxeleakmarkerquay"


def params(cases: Iterable[SourceCase | RequestCase]) -> list[Any]:
    """pytest params, one per case, named after it."""
    return [pytest.param(case, id=case.name) for case in cases]


SOURCE_CASES = [
    *office_and_pdf(),
    *bombs(),
    *xxe_cases(SECRET),
    *mislabelled(),
    *pathological(),
    *header_cases(),
    *source_id_cases(),
]
REQUEST_CASES = [
    *malformed_json(),
    *wrong_types(),
    *query_values(),
    *megabyte_questions(),
    *unicode_ids(),
    *oversized_json(),
    *multipart_framing(),
    *too_many_parts(),
    *http_headers(),
    *slow_clients(),
]
COMPANION_NUMBER = {case.name: n for n, case in enumerate(SOURCE_CASES, start=1)}
# kinds whose inputs take seconds each (megabytes of text to chunk, to tokenise, to send; a client timeout)
HEAVY_KINDS = frozenset(
    {"1mb-line", "1mb-whitespace", "1mb-separators", "megabyte-question", "too-many-parts", "slow-client"}
)
# the heavy inputs `make test` still sends: finding 2's whitespace run, and one megabyte question
FAST_HEAVY = frozenset({"1mb-run-ideographic-space-between-words", "question-1mb-one-word-query"})
FAST_PER_KIND = 8


def fast_sample(cases: Sequence[C]) -> list[C]:
    """A deterministic sample for `make test`: up to FAST_PER_KIND light inputs of every kind, spread over its list."""
    by_kind: dict[str, list[C]] = {}
    for case in cases:
        by_kind.setdefault(case.kind, []).append(case)
    sample = [case for case in cases if case.name in FAST_HEAVY]
    for kind, members in by_kind.items():
        if kind not in HEAVY_KINDS:
            step = max(1, len(members) // FAST_PER_KIND)
            sample += members[::step][:FAST_PER_KIND]
    return sample


@contextmanager
def bad_input_server(workdir: Path, cluster: EmbeddedPostgres, embedder_url: str) -> Iterator[LiveApp]:
    """A live server on a database of its own, and the file the XXE inputs name (its text must never be indexed)."""
    SECRET.write_text(f"{SECRET_MARKER} the server's private file\n")
    try:
        with scratch_database(cluster) as dsn, live_app(workdir, dsn, embedder_url) as app:
            _warm_up(app)
            yield app
    finally:
        SECRET.unlink(missing_ok=True)


def _warm_up(live: LiveApp) -> None:
    """One ordinary load, search and delete first: the first request's one-time costs (lazy imports, compiled
    patterns, the database's first plans) are the server's, not the first bad input's stall."""
    source_id = "files__default: 800000"
    body, content_type = multipart([part(source_id, b"Warm-up note about the harbour crane schedule.")])
    response = live.send(RawRequest("PUT", b"/loadSources", [*signed(), (b"Content-Type", content_type)], body))
    assert json.loads(response.body)["loaded_sources"] == [source_id], response.body[:300]
    status, _ = live.call("POST", "/docSearch", {"userId": "fuzzer", "query": "harbour crane", "ctxLimit": 5}, "fuzzer")
    assert status == 200
    assert live.call("POST", "/deleteSources", {"sourceIds": [source_id]})[0] == 200


def _check_costs(name: str, kind: str, outcome: str, measured: Measured) -> None:
    status = measured.response.status
    RESULTS.append(
        Result(
            name,
            kind,
            outcome,
            status,
            measured.stall_ms,
            measured.lag_ms,
            measured.rss_peak_mb,
            measured.rss_growth_mb,
            measured.seconds,
        )
    )
    stall, lag = measured.stall_ms, measured.lag_ms
    assert stall <= STALL_LIMIT_MS, f"{name}: the event loop stalled {stall:.0f} ms ({lag:.0f} ms lag less CPU wait)"
    growth = measured.rss_growth_mb
    assert growth <= RSS_GROWTH_LIMIT_MB, f"{name}: app RSS rose {growth:.0f} MB to {measured.rss_peak_mb:.0f} MB"


def _bad_part_outcome(live: LiveApp, answer: dict[str, Any], good_id: str, log: str) -> tuple[str, list[str]]:
    """(outcome, ids the bad part was stored under)."""
    loaded = [sid for sid in answer["loaded_sources"] if sid != good_id]
    if loaded:
        return LOADED, loaded
    if answer["sources_to_retry"]:
        return "retry", []
    failures = {f["source_id"]: f["error"] for f in live.status()["documents"]["failed_sources"]}
    new = {sid: error for sid, error in failures.items() if sid not in live.seen_failures}
    live.seen_failures.update(new)
    if new:
        assert all(error.strip() for error in new.values()), new
        return FAILED, []
    if "loadSources: source" in log and ("refused (" in log or "appears twice" in log):
        return REFUSED, []
    return "lost", []


def check_source_case(case: SourceCase, live: LiveApp) -> None:
    """Send the bad part beside a good one; check the outcome, the good one, the costs; delete what was indexed."""
    number = COMPANION_NUMBER[case.name]
    good_id, word = f"files__default: {number}", f"companion{number}quay"
    good = part(good_id, f"Companion {word}: the harbour crane report lists forty containers.".encode())
    bad = case.build(f"files__default: {900_000 + number}")
    body, content_type = multipart([bad, good])
    offset = live.log_size()
    request = RawRequest("PUT", b"/loadSources", [*signed(), (b"Content-Type", content_type)], body)
    measured = live.measure(lambda: live.send(request))
    response = measured.response
    if response.outcome != "2xx":
        _check_costs(case.name, case.kind, f"request-{response.outcome}", measured)
        pytest.fail(f"{case.name}: the whole request failed: {response.status} {response.body[:300]!r}")
    answer = json.loads(response.body)
    outcome, stored_as = _bad_part_outcome(live, answer, good_id, live.log_since(offset))
    _check_costs(case.name, case.kind, outcome, measured)
    assert outcome in case.allowed, f"{case.name}: the bad part was {outcome}, expected one of {sorted(case.allowed)}"
    assert good_id in answer["loaded_sources"], answer
    status, hits = live.call("POST", "/docSearch", {"userId": "fuzzer", "query": word, "ctxLimit": 5}, "fuzzer")
    assert status == 200 and good_id in {hit["source_id"] for hit in hits}, hits
    if case.secret is not None and stored_as:
        scope = {"scopeType": "source", "scopeList": stored_as}
        status, answer = live.call("POST", "/query", {"userId": "fuzzer", "query": SECRET_MARKER, **scope}, "fuzzer")
        assert SECRET_MARKER not in json.dumps(answer), f"{case.name}: the server's file was indexed"
    if stored_as:
        # indexed junk would keep the embedder busy for the rest of the run
        assert live.call("POST", "/deleteSources", {"sourceIds": stored_as}) == (
            200,
            {"message": "All valid sources deleted"},
        )


def check_request_case(case: RequestCase, live: LiveApp) -> None:
    """Send the request; check the answer's class, status, message, size and the log; check the costs."""
    request = case.build()
    offset = live.log_size()
    measured = live.measure(lambda: live.send(request))
    response = measured.response
    _check_costs(case.name, case.kind, response.outcome, measured)
    assert response.outcome in case.allowed, f"{case.name}: {response.status} {response.body[:500]!r}"
    if case.statuses is not None:
        assert response.status in case.statuses, f"{case.name}: {response.status} {response.body[:300]!r}"
    if case.app_level and response.outcome == "4xx":
        answer = json.loads(response.body)
        message = answer.get("error") or answer.get("detail") if isinstance(answer, dict) else None
        assert message, f"{case.name}: a {response.status} without a message: {response.body[:300]!r}"
    if case.max_answer_bytes is not None:
        assert len(response.body) <= case.max_answer_bytes, f"{case.name}: a {len(response.body)}-byte answer"
    if case.forged_log_line is not None:
        lines = live.log_since(offset).splitlines()
        assert not any(line.startswith(case.forged_log_line) for line in lines), lines
