"""TaskProcessing slots: chats wait on the LLM (nc_texttotext, up to 30 min per answer); searches must not."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from async_wait import until
from contract_kit import contract_config, make_settings, signed_headers
from nextcloud_pull_fake import FakePullNextcloud, RecordedRequest
from pull_kit import BUDGET, FAST_PULL, PullApp, acked, chat, sources, task_done

from quart_app.pull.task_progress import PROMPT_READY_PROGRESS
from quart_app.pull.task_types import CHAT_TASK_TYPE, SEARCH_PROVIDER, SEARCH_TASK_TYPE

# Nextcloud's own LLM, polled quickly: its answers come when the test says (FakePullNextcloud.finish_text2text)
SLOW_LLM = {"nc_texttotext": {"poll_interval_s": 0.05}}


@pytest.fixture
async def slow_llm_app(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> AsyncIterator[PullApp]:
    nextcloud.text2text_provider = True
    # progress reported often: a cancel in the Assistant is seen within 0.1 s
    raw = contract_config(embedder_url, pull={**FAST_PULL, "task_progress_s": 0.1}, llm=SLOW_LLM)
    settings = make_settings(tmp_path / "storage", fresh_dsn, raw, nextcloud_url=nextcloud.url)
    async with PullApp(settings, nextcloud) as running:
        await running.enable()
        nextcloud.add_file(["alice", "bob", "carol"], "files/budget.txt", BUDGET)
        await until(lambda: len(acked(nextcloud, "files")) == 1, what="the budget file indexed")
        await running.drain_embeddings()
        yield running
        # the chats still waiting on the LLM end with the app
        for llm_task in nextcloud.text2text_tasks():
            if nextcloud.tasks[llm_task]["status"] == "STATUS_RUNNING":
                nextcloud.finish_text2text(llm_task, "late")


async def test_a_search_is_answered_while_every_chat_slot_waits_on_a_slow_llm(
    slow_llm_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    slots = 2  # pull.concurrent_tasks, pinned in test_pull_config.py
    question = chat("What is the travel budget?")
    chats = [nextcloud.schedule_task(CHAT_TASK_TYPE, user, question) for user in ("alice", "bob")]
    await until(lambda: len(nextcloud.text2text_tasks()) == slots, what="both chats waiting on the LLM")
    third_chat = nextcloud.schedule_task(CHAT_TASK_TYPE, "carol", chat("Where is the Berlin office?"))
    search = nextcloud.schedule_task(SEARCH_TASK_TYPE, "carol", chat("travel budget", limit=3))
    # before: the search waited for a chat slot, i.e. for the LLM to answer (up to llm.nc_texttotext.timeout_s)
    found = await task_done(nextcloud, search, timeout_s=15)
    assert [s["label"] for s in sources(found)] == ["budget.txt"]
    # a chat still waits for the LLM's slots
    assert len(nextcloud.text2text_tasks()) == slots
    assert nextcloud.tasks[third_chat]["status"] == "STATUS_SCHEDULED"
    # by user: the two chats may reach the LLM in either order
    alice_llm_call = next(t for t in nextcloud.text2text_tasks() if nextcloud.tasks[t]["userId"] == "alice")
    nextcloud.finish_text2text(alice_llm_call, "The travel budget is 12000 euros.")
    answered = await task_done(nextcloud, chats[0])
    assert answered["output"]["output"] == "The travel budget is 12000 euros."
    await until(lambda: len(nextcloud.text2text_tasks()) == slots + 1, what="the third chat on the freed slot")


@pytest.mark.parametrize("withdraw", ["cancel_task", "delete_task"])
async def test_a_chat_the_user_cancels_frees_its_slot_without_waiting_for_the_llm(
    slow_llm_app: PullApp, nextcloud: FakePullNextcloud, caplog: pytest.LogCaptureFixture, withdraw: str
) -> None:
    caplog.set_level(logging.INFO, logger="quart_app.pull")
    question = chat("What is the travel budget?")
    chats = {user: nextcloud.schedule_task(CHAT_TASK_TYPE, user, question) for user in ("alice", "bob")}
    await until(lambda: len(nextcloud.text2text_tasks()) == 2, what="both chats waiting on the LLM")
    # the context is retrieved and the prompt with the LLM: Nextcloud shows it
    await until(lambda: all(nextcloud.tasks[t]["progress"] >= PROMPT_READY_PROGRESS for t in chats.values()))
    third_chat = nextcloud.schedule_task(CHAT_TASK_TYPE, "carol", chat("Where is the Berlin office?"))
    alice_llm_call = next(t for t in nextcloud.text2text_tasks() if nextcloud.tasks[t]["userId"] == "alice")
    getattr(nextcloud, withdraw)(chats["alice"])  # the user cancels (or deletes) the question in the Assistant
    # before: the slot stayed taken until the LLM answered the abandoned question (up to llm.nc_texttotext.timeout_s)
    await until(lambda: len(nextcloud.text2text_tasks()) == 3, timeout_s=15, what="the third chat on the freed slot")
    assert nextcloud.tasks[alice_llm_call]["status"] == "STATUS_CANCELLED"  # the LLM stops working on it too
    assert nextcloud.tasks[third_chat]["status"] == "STATUS_RUNNING"
    if withdraw == "cancel_task":
        assert nextcloud.tasks[chats["alice"]]["status"] == "STATUS_CANCELLED"
    assert f"/tasks_provider/{chats['alice']}/result" not in "".join(nextcloud.paths("POST"))
    poller_log = [r for r in caplog.records if r.name == "quart_app.pull.task_poller"]
    said = [r for r in poller_log if f"task {chats['alice']} " in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO], [r.getMessage() for r in said]
    # bob's question is still answered
    bob_llm_call = next(t for t in nextcloud.text2text_tasks() if nextcloud.tasks[t]["userId"] == "bob")
    nextcloud.finish_text2text(bob_llm_call, "The travel budget is 12000 euros.")
    answered = await task_done(nextcloud, chats["bob"])
    assert answered["output"]["output"] == "The travel budget is 12000 euros."


async def test_no_progress_report_is_still_on_its_way_when_the_answer_is_delivered(
    slow_llm_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    """Nextcloud 34 makes a finished task RUNNING again for a progress report it handles after the result."""
    nextcloud.delay_s["progress"] = 0.3  # longer than the reports' interval: one is nearly always on its way
    seen: list[tuple[str, str]] = []
    nextcloud.on_request = lambda request: seen.append(("arrived", request.path.rsplit("/", 1)[-1]))
    nextcloud.on_answer = lambda request, status: seen.append(("answered", request.path.rsplit("/", 1)[-1]))
    task = nextcloud.schedule_task(CHAT_TASK_TYPE, "alice", chat("What is the travel budget?"))
    await until(lambda: ("answered", "progress") in seen, what="a progress report answered")
    nextcloud.finish_text2text(nextcloud.text2text_tasks()[0], "The travel budget is 12000 euros.")
    await until(lambda: ("answered", "result") in seen, what="the result delivered")
    await until(lambda: seen.count(("arrived", "progress")) == seen.count(("answered", "progress")))
    assert seen[seen.index(("arrived", "result")) :].count(("answered", "progress")) == 0, seen
    assert nextcloud.tasks[task]["status"] == "STATUS_SUCCESSFUL"


async def test_a_trigger_arriving_while_an_empty_poll_is_answered_is_not_lost(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    """A question scheduled just after Nextcloud looked for tasks: its /trigger reaches the app before that poll's
    empty answer does, and must still wake the poller."""
    raw = contract_config(embedder_url, pull={**FAST_PULL, "task_poll_s": 60.0, "task_poll_after_trigger_s": 60.0})
    settings = make_settings(tmp_path / "storage", fresh_dsn, raw, nextcloud_url=nextcloud.url)
    async with PullApp(settings, nextcloud) as running:
        await running.enable()
        await until(lambda: len(nextcloud.providers) == 2, what="both providers registered")
        loop = asyncio.get_running_loop()
        scheduled: list[int] = []

        def schedule_while_the_empty_answer_is_on_its_way(request: RecordedRequest, status: int) -> None:
            if request.path.endswith("/tasks_provider/next") and status == 204 and not scheduled:
                scheduled.append(nextcloud.schedule_task(SEARCH_TASK_TYPE, "alice", chat("budget", limit=3)))
                trigger = running.client.post("/trigger", query_string={"providerId": SEARCH_PROVIDER},
                                              headers=signed_headers())  # fmt: skip
                assert asyncio.run_coroutine_threadsafe(trigger, loop).result(30).status_code == 200

        nextcloud.on_answer = schedule_while_the_empty_answer_is_on_its_way
        pull = running.engine.pull
        assert pull is not None and pull.tasks is not None
        pull.tasks.trigger()
        await until(lambda: bool(scheduled), what="a poll answered empty")
        # before: the poller dropped the trigger with that answer and took the task at its next poll, 60 s later
        done = await task_done(nextcloud, scheduled[0], timeout_s=15)
        assert done["status"] == "STATUS_SUCCESSFUL", done
