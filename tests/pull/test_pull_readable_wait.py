"""Pull mode: one task's enrich_sources calls, one per fill round, share the wait nextcloud.readable_check_timeout_s
(a Nextcloud that hangs costs a task one timeout, not one per round); a round it runs out in fails as a failed
call does."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from async_wait import until
from budget_notes import BEST, BUDGET_QUESTION, TENT, add_lost_notes
from contract_kit import contract_config, make_settings
from nextcloud_pull_fake import FakePullNextcloud, RecordedRequest
from pull_kit import FAST_PULL, PullApp, acked, chat, sources, task_done
from timeout_recording_transport import TimeoutRecordingTransport

from quart_app.app_settings import AppSettings
from quart_app.nextcloud import NextcloudClient
from quart_app.pull.enriched_sources import EnrichedCandidates
from quart_app.pull.task_types import CHAT_TASK_TYPE, SEARCH_TASK_TYPE
from quart_app.services.answer import DocSearchResult
from quart_app.services.errors import ReadabilityUnknownError, ReadableCheckSpentError
from quart_app.services.retrieval import RetrievalService, RetrievedChunk
from quart_app.store.search_filters import Scope

WAIT_S = 2.0


@pytest.fixture
def pull_settings(tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud) -> AppSettings:
    raw = contract_config(embedder_url, pull=FAST_PULL, nextcloud={"readable_check_timeout_s": WAIT_S})
    settings: AppSettings = make_settings(tmp_path / "storage", fresh_dsn, raw, nextcloud_url=nextcloud.url)
    return settings


async def test_a_round_whose_enrich_sources_hangs_gets_what_the_earlier_rounds_left_of_the_wait(
    nextcloud: FakePullNextcloud,
) -> None:
    # each call's read timeout, and how long it took on the wire (within the time the check counts as waited)
    recording = TimeoutRecordingTransport()

    def hang_from_the_second_call(request: RecordedRequest) -> None:
        if request.path.endswith("/enrich_sources") and len(recording.timeouts) > 1:
            nextcloud.delay_s["enrich"] = 2 * WAIT_S  # Nextcloud hangs from the second round on

    rounds: list[list[DocSearchResult]] = [
        [
            {
                "source_id": f"files__default: {nextcloud.add_file(['alice'], f'files/{n}.md', b'notes')}",
                "title": f"{n}.md",
            }
        ]
        for n in range(3)
    ]
    nextcloud.on_request = hang_from_the_second_call
    nc = NextcloudClient(
        nextcloud.url, app_id="context_chat_backend", app_version="5.4.0", app_secret=nextcloud.secret,
        transport=recording,
    )  # fmt: skip
    # one task's check, asked once per fill round
    check = EnrichedCandidates(nc, WAIT_S)
    try:
        assert await check("alice", rounds[0]) == set()
        # a round the wait ran out in says nothing more can be told (the fill stops), and so does a later call
        with pytest.raises(ReadableCheckSpentError):
            await check("alice", rounds[1])
        with pytest.raises(ReadableCheckSpentError):
            await check("alice", rounds[2])
    finally:
        await nc.aclose()
    # the first call waited the whole setting; the second only what the first left (before: each call the client's
    # own 30 s, so a task of four rounds waited up to four times that); the third was never sent
    read_timeouts, on_the_wire_s = recording.read_timeouts, recording.on_the_wire_s
    assert len(read_timeouts) == 2, read_timeouts
    assert read_timeouts[0] == WAIT_S and read_timeouts[1] <= WAIT_S - on_the_wire_s[0], (read_timeouts, on_the_wire_s)
    # the first round keeps its label
    assert [entry["label"] for entry in check.entries_of(rounds[0] + rounds[1])] == ["0.md"]
    with pytest.raises(ReadabilityUnknownError) as left_out:
        check.raise_if_left_out()
    assert str(left_out.value) == (
        "Nextcloud did not say whether the user can still read the 2 file(s) the answer would draw on (POST"
        " /ocs/v2.php/apps/context_chat/enrich_sources: Nextcloud did not answer within 2 s, the config's"
        " nextcloud.readable_check_timeout_s); nothing was answered from them: ask again once Nextcloud answers"
        " enrich_sources requests"
    )


async def test_a_search_stops_filling_once_the_wait_is_spent_and_logs_the_one_call_that_timed_out(
    pull_app: PullApp, nextcloud: FakePullNextcloud, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    best = nextcloud.add_file(["alice"], "files/best.txt", BEST)
    lost = add_lost_notes(nextcloud, 9)
    nextcloud.add_file(["alice"], "files/tent.txt", TENT)
    await until(lambda: len(acked(nextcloud, "files")) == 11)
    await pull_app.drain_embeddings()
    # unshares the PHP app did not queue: each round finds more lost notes, so the search would fill four rounds
    for file_id in lost:
        nextcloud.set_file_users(file_id, ["bob"])
    rounds: list[int] = []
    candidate_documents = RetrievalService.candidate_documents

    async def counted(
        service: RetrievalService, user_id: str, query: str, limit: int, scope: Scope | None = None
    ) -> list[RetrievedChunk]:
        rounds.append(limit)
        return await candidate_documents(service, user_id, query, limit, scope)

    monkeypatch.setattr(RetrievalService, "candidate_documents", counted)
    enrich_calls = 0

    def hang_from_the_second_call(request: RecordedRequest) -> None:
        nonlocal enrich_calls
        if request.path.endswith("/enrich_sources"):
            enrich_calls += 1
            if enrich_calls == 2:
                nextcloud.delay_s["enrich"] = 2 * WAIT_S

    nextcloud.on_request = hang_from_the_second_call
    caplog.set_level(logging.WARNING, logger="quart_app.pull.enriched_sources")
    search = nextcloud.schedule_task(SEARCH_TASK_TYPE, "alice", chat(BUDGET_QUESTION, limit=3))
    done = await task_done(nextcloud, search)
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("enrich_sources failed")]
    # round 2's call timed out: no round after it (before: rounds 3 and 4 retrieved, their calls failing unsent,
    # each logged as a timeout of Nextcloud's), one warning, and the task ends with what round 1 confirmed
    assert enrich_calls == 2 and len(rounds) == 2, (enrich_calls, rounds)
    assert len(failed) == 1 and "did not answer within 2 s" in failed[0], failed
    assert done["status"] == "STATUS_SUCCESSFUL", done
    assert [s["id"] for s in sources(done)] == [f"files__default: {best}"], done


async def test_a_chat_whose_first_enrich_sources_call_hangs_fails_naming_only_that_rounds_files(
    pull_app: PullApp, nextcloud: FakePullNextcloud, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_lost_notes(nextcloud, 3)
    nextcloud.add_file(["alice"], "files/best.txt", BEST)
    nextcloud.add_file(["alice"], "files/tent.txt", TENT)
    await until(lambda: len(acked(nextcloud, "files")) == 5)
    await pull_app.drain_embeddings()
    rounds: list[int] = []
    retrieve = RetrievalService.retrieve

    async def counted(
        service: RetrievalService, user_id: str, query: str, k: int, scope: Scope | None = None
    ) -> list[RetrievedChunk]:
        rounds.append(k)
        return await retrieve(service, user_id, query, k, scope)

    monkeypatch.setattr(RetrievalService, "retrieve", counted)
    nextcloud.delay_s["enrich"] = 2 * WAIT_S
    caplog.set_level(logging.WARNING, logger="quart_app.pull.enriched_sources")
    asked_before = len(nextcloud.requests)
    done = await task_done(nextcloud, nextcloud.schedule_task(CHAT_TASK_TYPE, "alice", chat(BUDGET_QUESTION)))
    enrich_calls = [r.json for r in nextcloud.requests[asked_before:] if r.path.endswith("/enrich_sources")]
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("enrich_sources failed")]
    # nothing confirmed: the task fails as before, naming the one round's files, after one retrieval and one warning
    # (before: every further round retrieved again and logged a timeout for a call never sent)
    assert len(enrich_calls) == 1 and len(rounds) == 1 and len(failed) == 1, (enrich_calls, rounds, failed)
    assert done["status"] == "STATUS_FAILED" and done["output"] is None, done
    assert done["userFacingErrorMessage"] == (
        f"Nextcloud did not say whether the user can still read the {len(enrich_calls[0]['sources'])} file(s) the"
        " answer would draw on (POST /ocs/v2.php/apps/context_chat/enrich_sources: Nextcloud did not answer within"
        " 2 s, the config's nextcloud.readable_check_timeout_s); nothing was answered from them: ask again once"
        " Nextcloud answers enrich_sources requests"
    ), done


async def test_an_enrich_sources_answer_trickled_out_past_the_wait_ends_the_wait(nextcloud: FakePullNextcloud) -> None:
    """Nextcloud sends the answer a few bytes at a time, each well within the wait, the whole over three waits: the
    client's timeout bounds each read, not the call, and the round was answered after all of them."""
    files: list[DocSearchResult] = [
        {"source_id": f"files__default: {nextcloud.add_file(['alice'], f'files/{n}.md', b'notes')}", "title": f"{n}.md"}
        for n in range(2)
    ]
    # the answer (416 bytes) in 26 pieces of 16, WAIT_S / 8 apart: about 3 x WAIT_S in all
    nextcloud.trickle_s["enrich"] = WAIT_S / 8
    nc = NextcloudClient(nextcloud.url, app_id="context_chat_backend", app_version="5.4.0", app_secret=nextcloud.secret)
    check = EnrichedCandidates(nc, WAIT_S)
    try:
        # before: answered (both files readable) once the last piece came, after 3 x WAIT_S
        with pytest.raises(ReadableCheckSpentError):
            await check("alice", files)
    finally:
        await nc.aclose()
    with pytest.raises(ReadabilityUnknownError) as left_out:
        check.raise_if_left_out()
    assert "Nextcloud did not answer within 2 s, the config's nextcloud.readable_check_timeout_s" in str(left_out.value)
