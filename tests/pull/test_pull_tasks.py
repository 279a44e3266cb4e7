"""TaskProcessing (PHP app 5.4+): providers registered on enable, chat and search tasks answered, /trigger."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from async_wait import until
from contract_kit import contract_config, make_settings
from nextcloud_pull_fake import FakePullNextcloud, RecordedRequest
from pull_kit import BUDGET, FAST_PULL, LABEL, PullApp, acked, task_done

from quart_app.pull.task_types import CHAT_REGISTRATION, CHAT_TASK_TYPE, SEARCH_REGISTRATION, SEARCH_TASK_TYPE
from quart_app.store.search_store import SearchStore

BERLIN = b"Berlin office notes: the budget review for the Berlin office happens in March."


async def _corpus(pull_app: PullApp, nextcloud: FakePullNextcloud) -> dict[str, int]:
    ids = {
        "budget": nextcloud.add_file(["alice"], "files/Documents/budget.txt", BUDGET),
        "label": nextcloud.add_file(["alice", "bob"], "files/label.txt", LABEL),
        "berlin": nextcloud.add_file(["alice"], "files/Documents/berlin.txt", BERLIN),
    }
    nextcloud.add_content_item(
        ["alice"], provider="mail__mail", item_id="42", content="Berlin budget mail: 12000 euros"
    )
    await until(lambda: len(acked(nextcloud, "files")) == 3 and len(acked(nextcloud, "content_providers")) == 1)
    await pull_app.drain_embeddings()
    return ids


def _chat(prompt: str, scope_type: str = "none", scope_list: list[str] | None = None) -> dict[str, Any]:
    return {"prompt": prompt, "scopeType": scope_type, "scopeList": scope_list or [], "scopeListMeta": ""}


def _sources(task: dict[str, Any]) -> list[dict[str, Any]]:
    sources = task["output"]["sources"]
    assert all(isinstance(source, str) for source in sources)  # LIST_OF_TEXTS: JSON strings
    return [json.loads(source) for source in sources]


async def test_providers_are_registered_on_enable_and_removed_on_disable(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    await until(lambda: len(nextcloud.providers) == 2, what="both providers registered")
    assert nextcloud.providers["context_chat-context_chat"] == CHAT_REGISTRATION
    assert nextcloud.providers["context_chat-context_chat_search"] == SEARCH_REGISTRATION
    assert CHAT_REGISTRATION["provider"]["task_type"] == "context_chat:context_chat"
    assert SEARCH_REGISTRATION["provider"]["input_shape_defaults"] == {"limit": 10}
    await pull_app.enable(False)
    assert nextcloud.providers == {}
    loops = pull_app.app.extensions["ccb_lifecycle"].loops
    await until(lambda: all(loops.snapshot()[name]["state"] == "waiting" for name in ("documents", "actions", "tasks")))


async def test_chat_task_answers_with_enriched_unique_sources_of_the_user(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    ids = await _corpus(pull_app, nextcloud)
    alice = nextcloud.schedule_task("context_chat:context_chat", "alice", _chat("What is the travel budget of Berlin?"))
    pull_app.app.extensions["ccb_engine"].pull.tasks.trigger()
    done = await task_done(nextcloud, alice)
    assert done["status"] == "STATUS_SUCCESSFUL", done
    assert "12000" in done["output"]["output"]
    sources = _sources(done)
    assert len({s["id"] for s in sources}) == len(sources)
    budget = next(s for s in sources if s["id"] == f"files__default: {ids['budget']}")
    assert budget == {
        "id": f"files__default: {ids['budget']}",
        "label": "budget.txt",
        "icon": f"{nextcloud.url}/core/img/filetypes/file.svg",
        "url": f"{nextcloud.url}/index.php/f/{ids['budget']}",
    }
    bob = nextcloud.schedule_task("context_chat:context_chat", "bob", _chat("What is the travel budget of Berlin?"))
    done = await task_done(nextcloud, bob)
    assert {s["id"] for s in _sources(done)} <= {f"files__default: {ids['label']}"}  # never alice's


async def test_a_chat_task_reads_its_sources_titles_once(
    pull_app: PullApp, nextcloud: FakePullNextcloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check after generating reads the sources' titles, and the task output names the sources with them: a
    second read of the same rows (as the task poller did) costs a query and gives nothing new."""
    await _corpus(pull_app, nextcloud)
    reads: list[list[str]] = []
    read_titles = SearchStore.titles

    async def counted(store: SearchStore, user_id: str, source_ids: list[str]) -> dict[str, str]:
        reads.append(list(source_ids))
        return await read_titles(store, user_id, source_ids)

    monkeypatch.setattr(SearchStore, "titles", counted)
    task = nextcloud.schedule_task("context_chat:context_chat", "alice", _chat("What is the travel budget of Berlin?"))
    pull_app.app.extensions["ccb_engine"].pull.tasks.trigger()
    done = await task_done(nextcloud, task)
    assert done["status"] == "STATUS_SUCCESSFUL", done
    assert len(reads) == 1, reads
    assert len(_sources(done)) == len(reads[0])  # each source the check read is named (a mail by its provider key)


async def test_search_task_honours_the_limit_and_scopes_resolve_folders(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    ids = await _corpus(pull_app, nextcloud)
    search = {**_chat("Berlin budget"), "limit": 2}
    task = nextcloud.schedule_task("context_chat:context_chat_search", "alice", search)
    done = await task_done(nextcloud, task)
    assert done["status"] == "STATUS_SUCCESSFUL", done
    assert set(done["output"]) == {"sources"} and 1 <= len(_sources(done)) <= 2
    nextcloud.add_folder(900, [ids["berlin"]])  # files/Documents is folder 900 holding berlin.txt only here
    scoped = nextcloud.schedule_task(
        "context_chat:context_chat", "alice", _chat("Berlin budget", "source", ["files__default: 900"])
    )
    done = await task_done(nextcloud, scoped)
    assert [s["id"] for s in _sources(done)] == [f"files__default: {ids['berlin']}"]
    resolve = next(r for r in nextcloud.requests if r.path.endswith("/resolve_scope_list"))
    assert resolve.json == {"source_ids": ["files__default: 900"], "userId": "alice"}


async def test_task_errors_use_upstream_strings(pull_app: PullApp, nextcloud: FakePullNextcloud) -> None:
    nothing = nextcloud.schedule_task("context_chat:context_chat", "carol", _chat("Anything?"))
    bad = nextcloud.schedule_task("context_chat:context_chat", "alice", _chat("Q", "galaxy"))
    empty_search = nextcloud.schedule_task("context_chat:context_chat_search", "carol", _chat("Anything?"))
    failed = await task_done(nextcloud, nothing)
    assert failed["status"] == "STATUS_FAILED"
    assert failed["errorMessage"] == "Context errorNo documents retrieved, please index a few documents first"
    result = next(r for r in nextcloud.requests if r.path.endswith(f"/{nothing}/result"))
    assert result.json["userFacingErrorMessage"] == "No documents retrieved, please index a few documents first"
    invalid = await task_done(nextcloud, bad)
    assert invalid["errorMessage"].startswith("Validation error: scopeType must be one of none, source, provider")
    searched = await task_done(nextcloud, empty_search)
    assert searched["status"] == "STATUS_SUCCESSFUL" and searched["output"] == {"sources": []}


async def test_an_oversized_prompt_or_limit_fails_the_task_without_running_it(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    prompt = "Where is the budget? " * 7000  # 147,000 characters
    too_long = nextcloud.schedule_task(
        "context_chat:context_chat", "alice", _chat(prompt, "source", ["files__default: 1"])
    )
    search = {**_chat("budget"), "limit": 10**23}
    too_many = nextcloud.schedule_task("context_chat:context_chat_search", "alice", search)
    failed = await task_done(nextcloud, too_long)
    message = (
        "The question is too long: 147,000 characters, at most 131,072 are accepted (retrieval.max_question_chars);"
        " shorten the question"
    )
    assert (failed["status"], failed["errorMessage"]) == ("STATUS_FAILED", f"Validation error: {message}")
    result = next(r for r in nextcloud.requests if r.path.endswith(f"/{too_long}/result"))
    assert result.json["userFacingErrorMessage"] == message
    assert not [r for r in nextcloud.requests if r.path.endswith("/resolve_scope_list")]  # refused before any call
    failed = await task_done(nextcloud, too_many)
    assert failed["errorMessage"] == f"Validation error: limit must be between 1 and 1000, not {10**23}"


async def test_trigger_wakes_the_poller_and_the_route_answers_empty_json(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    await until(lambda: len(nextcloud.providers) == 2)
    response = await pull_app.client.post(
        "/trigger", query_string={"providerId": "context_chat-context_chat"}, headers=_signed()
    )
    assert response.status_code == 200 and await response.get_json() == {}
    pull = pull_app.engine.pull
    # white box: the poller now waits the slower after-trigger interval
    assert pull is not None and pull.tasks is not None and pull.tasks._triggered


def _signed() -> dict[str, str]:
    from contract_kit import signed_headers

    headers: dict[str, str] = signed_headers()
    return headers


async def test_a_file_nextcloud_no_longer_shows_the_user_stays_out_of_chat_and_search(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    ids = await _corpus(pull_app, nextcloud)
    label = f"files__default: {ids['label']}"
    question = _chat("Which label does the Ethical AI Rating give?")
    before = await task_done(nextcloud, nextcloud.schedule_task("context_chat:context_chat", "bob", question))
    assert "green label" in before["output"]["output"] and [s["id"] for s in _sources(before)] == [label]
    # an unshare on Nextcloud 34: the PHP app queues nothing, so the backend still lists bob as a reader
    nextcloud.set_file_users(ids["label"], ["alice"])
    chat = await task_done(nextcloud, nextcloud.schedule_task("context_chat:context_chat", "bob", question))
    assert chat["status"] == "STATUS_FAILED"
    assert chat["errorMessage"] == "Context errorNo documents retrieved, please index a few documents first"
    search = nextcloud.schedule_task("context_chat:context_chat_search", "bob", {**question, "limit": 5})
    assert (await task_done(nextcloud, search))["output"] == {"sources": []}
    # alice still reads it, and a file that really is named "Deleted file" is not taken for a missing one
    alice = await task_done(nextcloud, nextcloud.schedule_task("context_chat:context_chat", "alice", question))
    assert label in [s["id"] for s in _sources(alice)]
    named = nextcloud.add_file(["bob"], "files/Deleted file", b"Deleted file: the Ethical AI Rating archive index.")
    await until(lambda: len(acked(nextcloud, "files")) == 4)
    await pull_app.drain_embeddings()
    search = nextcloud.schedule_task("context_chat:context_chat_search", "bob", {**question, "limit": 5})
    assert [s["id"] for s in _sources(await task_done(nextcloud, search))] == [f"files__default: {named}"]


async def test_a_search_fills_the_place_of_a_file_nextcloud_no_longer_shows_with_the_next_one(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    ids = await _corpus(pull_app, nextcloud)
    question = {**_chat("Berlin budget"), "limit": 2}
    best_two = [
        s["id"]
        for s in _sources(await task_done(nextcloud, nextcloud.schedule_task(SEARCH_TASK_TYPE, "alice", question)))
    ]
    files = {f"files__default: {file_id}": file_id for file_id in ids.values()}
    # one mail among them at most: a file is among the best two
    unshared = next(source for source in best_two if source in files)
    # an unshare on Nextcloud 34 that the PHP app does not queue: alice still reads it as far as the backend knows
    nextcloud.set_file_users(files[unshared], ["bob"])
    found = [
        s["id"]
        for s in _sources(await task_done(nextcloud, nextcloud.schedule_task(SEARCH_TASK_TYPE, "alice", question)))
    ]
    assert len(found) == 2 and unshared not in found
    assert next(source for source in best_two if source != unshared) in found


async def test_two_mails_found_are_two_sources_though_enrich_sources_gives_both_the_provider_key_as_id(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    await _corpus(pull_app, nextcloud)
    nextcloud.add_content_item(
        ["alice"], provider="mail__mail", item_id="43", title="Hotel", content="Berlin budget mail: hotel 300 euros"
    )
    await until(lambda: len(acked(nextcloud, "content_providers")) == 2)
    await pull_app.drain_embeddings()
    question = {**_chat("Berlin budget mail euros"), "limit": 10}
    found = _sources(await task_done(nextcloud, nextcloud.schedule_task(SEARCH_TASK_TYPE, "alice", question)))
    mails = [s for s in found if s["id"] == "mail__mail"]
    assert sorted(s["url"] for s in mails) == [f"{nextcloud.url}/apps/mail/42", f"{nextcloud.url}/apps/mail/43"]
    assert len({json.dumps(s, sort_keys=True) for s in found}) == len(found)  # still unique


async def test_answers_still_running_when_the_stop_times_out_are_cancelled_with_the_loop(
    pull_app: PullApp, nextcloud: FakePullNextcloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every answer slot busy (the loop waits for a free one) and one task more in the queue."""
    pull = pull_app.engine.pull
    assert pull is not None and pull.tasks is not None
    slots = 2  # pull.concurrent_tasks, pinned in test_pull_config.py
    started: list[int] = []
    cancelled: list[int] = []

    async def answer_for_ever(task: dict[str, Any], prompt_ready: Callable[[], None] | None = None) -> dict[str, Any]:
        started.append(task["id"])
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(task["id"])
            raise
        return {}

    monkeypatch.setattr(pull.tasks, "answer", answer_for_ever)
    for n in range(slots + 1):
        nextcloud.schedule_task("context_chat:context_chat", "alice", _chat(f"A long answer {n}?"))
    pull.tasks.trigger()
    await until(lambda: len(started) == slots, what="every answer slot busy")
    await asyncio.wait_for(pull_app.app.extensions["ccb_lifecycle"].loops.stop(["tasks"], timeout_s=0.2), 10)
    assert sorted(cancelled) == sorted(started)  # before: the answers ran on after the loop was gone


async def test_an_answer_cut_off_by_the_stop_fails_its_task_instead_of_leaving_it_running(
    pull_app: PullApp, nextcloud: FakePullNextcloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nextcloud never fails a RUNNING task by itself: without a result the Assistant showed it running for months."""
    pull = pull_app.engine.pull
    assert pull is not None and pull.tasks is not None
    started = asyncio.Event()

    async def answer_for_ever(task: dict[str, Any], prompt_ready: Callable[[], None] | None = None) -> dict[str, Any]:
        started.set()
        await asyncio.Event().wait()
        return {}

    monkeypatch.setattr(pull.tasks, "answer", answer_for_ever)
    task = nextcloud.schedule_task("context_chat:context_chat", "alice", _chat("A long answer?"))
    pull.tasks.trigger()
    await asyncio.wait_for(started.wait(), 30)
    await asyncio.wait_for(pull_app.app.extensions["ccb_lifecycle"].loops.stop(["tasks"], timeout_s=0.2), 10)
    assert nextcloud.tasks[task]["status"] == "STATUS_FAILED"
    message = "Context Chat was stopped before the answer was ready (an update or restart); please ask again"
    assert nextcloud.tasks[task]["errorMessage"] == f"Unexpected error{message}"
    assert nextcloud.tasks[task]["userFacingErrorMessage"] == message


async def test_a_nul_or_lone_surrogate_in_a_prompt_or_scope_is_a_validation_error(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    """PostgreSQL text cannot hold NUL nor UTF-8 a lone surrogate: such a task failed in the database as
    "Unexpected error…" instead of naming the field, as the push routes do (422)."""
    nul_prompt = nextcloud.schedule_task("context_chat:context_chat", "alice", _chat("budget\x00?"))
    nul_scope = nextcloud.schedule_task(
        "context_chat:context_chat_search", "alice", _chat("budget", "provider", ["files__\x00default"])
    )
    surrogate = nextcloud.schedule_task("context_chat:context_chat", "alice", _chat("budget \ud800?"))
    nul_user = nextcloud.schedule_task("context_chat:context_chat", "al\x00ice", _chat("budget?"))
    failed = await task_done(nextcloud, nul_prompt)
    assert failed["errorMessage"] == "Validation error: prompt must not contain NUL characters (\\u0000)"
    failed = await task_done(nextcloud, nul_scope)
    assert failed["errorMessage"] == "Validation error: scopeList must not contain NUL characters (\\u0000)"
    failed = await task_done(nextcloud, surrogate)
    surrogate_problem = "must not contain lone UTF-16 surrogates (\\ud800-\\udfff)"
    assert failed["errorMessage"] == f"Validation error: prompt {surrogate_problem}"
    failed = await task_done(nextcloud, nul_user)
    assert failed["errorMessage"] == "Validation error: userId must not contain NUL characters (\\u0000)"


async def test_an_llm_context_too_small_for_the_template_tells_the_user_to_ask_the_admin_and_logs_the_fix(
    tmp_path: Path,
    fresh_dsn: str,
    embedder_url: str,
    nextcloud: FakePullNextcloud,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only the admin can raise n_ctx: the user used to be told "raise llm.<backend>.n_ctx or lower max_tokens"."""
    small = {"nc_texttotext": {"n_ctx": 64, "max_tokens": 32}}  # the template alone needs more than 32 tokens
    raw = contract_config(embedder_url, pull=FAST_PULL, llm=small)
    settings = make_settings(tmp_path / "storage", fresh_dsn, raw, nextcloud_url=nextcloud.url)
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        await _corpus(pull_app, nextcloud)
        task = nextcloud.schedule_task(CHAT_TASK_TYPE, "alice", _chat("What is the travel budget of Berlin?"))
        failed = await task_done(nextcloud, task)
    message = (
        "Context Chat cannot answer: its language model is set up with too small a context for the prompt; please"
        " tell your administrator"
    )
    assert (failed["status"], failed["errorMessage"]) == ("STATUS_FAILED", f"Unexpected error{message}")
    assert failed["userFacingErrorMessage"] == message
    advice = [r for r in caplog.records if r.levelno == logging.ERROR and "raise llm.<backend>.n_ctx" in r.getMessage()]
    assert len(advice) == 1 and f"task {task}" in advice[0].getMessage()


async def test_an_answer_ready_during_nextcloud_maintenance_is_delivered_when_it_ends(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    await _corpus(pull_app, nextcloud)
    task = nextcloud.schedule_task(CHAT_TASK_TYPE, "alice", _chat("What is the travel budget of Berlin?"))

    def maintenance_from_the_result(request: RecordedRequest) -> None:
        if request.path.endswith(f"/{task}/result"):
            nextcloud.maintenance.set()  # an upgrade begins while the answer is on its way
            nextcloud.on_request = None

    nextcloud.on_request = maintenance_from_the_result
    await until(nextcloud.maintenance.is_set, what="the result on its way")
    # maintenance outlasts the result's tries (pull.result_attempts: 0.55 s of backoff with FAST_PULL)
    await asyncio.sleep(2.0)
    nextcloud.maintenance.clear()
    # before: the tries ran out during maintenance and the task showed as running in the Assistant for good
    done = await task_done(nextcloud, task, timeout_s=15)
    assert done["status"] == "STATUS_SUCCESSFUL" and "12000" in done["output"]["output"]


async def test_the_answer_to_a_task_deleted_meanwhile_is_dropped_without_an_error(
    pull_app: PullApp, nextcloud: FakePullNextcloud, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="quart_app.pull")
    await _corpus(pull_app, nextcloud)
    task = nextcloud.schedule_task(CHAT_TASK_TYPE, "alice", _chat("What is the travel budget of Berlin?"))
    result_path = f"/ocs/v2.php/taskprocessing/tasks_provider/{task}/result"

    def deleted_before_the_result(request: RecordedRequest) -> None:
        if request.path == result_path:
            nextcloud.delete_task(task)  # the user deleted the question in the Assistant
            nextcloud.on_request = None

    nextcloud.on_request = deleted_before_the_result
    await until(lambda: any(result_path in r.getMessage() for r in caplog.records), what="the result's outcome logged")
    # before: an ERROR "could not be delivered" and a result failure counted, for a user's ordinary deletion
    about_it = [r for r in caplog.records if result_path in r.getMessage()]
    assert [r.levelno for r in about_it] == [logging.INFO], [r.getMessage() for r in about_it]
    assert nextcloud.paths("POST").count(result_path) == 1
    counters = (await pull_app.status())["loops"]["tasks"]["counters"]
    assert "result_failures" not in counters, counters
