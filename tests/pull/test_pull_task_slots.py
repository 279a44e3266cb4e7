"""TaskProcessing slots: chats wait on the LLM (nc_texttotext, up to 30 min per answer); searches must not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from contract_kit import contract_config, make_settings, signed_headers
from nextcloud_pull_fake import FakePullNextcloud, RecordedRequest
from pull_kit import BUDGET, FAST_PULL, PullApp, acked, chat, sources, task_done, until

from quart_app.pull.task_types import CHAT_TASK_TYPE, SEARCH_PROVIDER, SEARCH_TASK_TYPE

# Nextcloud's own LLM, polled quickly: its answers come when the test says (FakePullNextcloud.finish_text2text)
SLOW_LLM = {"nc_texttotext": {"poll_interval_s": 0.05}}


@pytest.fixture
async def slow_llm_app(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> AsyncIterator[PullApp]:
    nextcloud.text2text_provider = True
    raw = contract_config(embedder_url, pull=FAST_PULL, llm=SLOW_LLM)
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
    first_llm_call = nextcloud.text2text_tasks()[0]
    nextcloud.finish_text2text(first_llm_call, "The travel budget is 12000 euros.")
    answered = await task_done(nextcloud, chats[0])
    assert answered["output"]["output"] == "The travel budget is 12000 euros."
    await until(lambda: len(nextcloud.text2text_tasks()) == slots + 1, what="the third chat on the freed slot")


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
