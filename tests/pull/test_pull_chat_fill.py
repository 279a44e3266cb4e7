"""A pull-mode chat task whose user lost the top-ranked files (an unshare the PHP app did not queue) answers from her
own files further down the ranking, asking enrich_sources about each candidate once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from async_wait import until
from budget_notes import BUDGET_QUESTION, TENT, add_lost_notes
from contract_kit import contract_config, make_settings
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import FAST_PULL, PullApp, acked, chat, sources, task_done

from quart_app.app_settings import AppSettings
from quart_app.pull.task_types import CHAT_TASK_TYPE
from quart_app.services.answer import FILL_ROUNDS

# far fewer than the 30 shipped, so a few notes fill a whole context
CONTEXT_CHUNKS = 3
# hers, on the question's topic without all of its words: only the vector leg ranks it, below the notes
OWN = b"Alice's expenses: the trip to Berlin in May cost 800 euros for the hotel."


@pytest.fixture
def pull_settings(tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud) -> AppSettings:
    raw = contract_config(embedder_url, pull={**FAST_PULL, "chat_context_chunks": CONTEXT_CHUNKS})
    settings: AppSettings = make_settings(tmp_path / "storage", fresh_dsn, raw, nextcloud_url=nextcloud.url)
    return settings


async def test_a_chat_whose_user_lost_every_top_ranked_file_answers_from_her_own_asking_about_each_once(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    lost = add_lost_notes(nextcloud, 9)
    own = nextcloud.add_file(["alice"], "files/expenses.txt", OWN)
    tent = nextcloud.add_file(["alice"], "files/tent.txt", TENT)
    await until(lambda: len(acked(nextcloud, "files")) == 11)
    await pull_app.drain_embeddings()
    # unshares on Nextcloud 34 that the PHP app does not queue: the backend still lists alice as their reader
    for file_id in lost:
        nextcloud.set_file_users(file_id, ["bob"])
    asked_before = len(nextcloud.requests)
    task = nextcloud.schedule_task(CHAT_TASK_TYPE, "alice", chat(BUDGET_QUESTION))
    done = await task_done(nextcloud, task)
    enrich_calls = [r.json for r in nextcloud.requests[asked_before:] if r.path.endswith("/enrich_sources")]
    lost_ids = {f"files__default: {file_id}" for file_id in lost}
    # the context's first 3 chunks were all lost notes: one round alone failed the task ("No documents retrieved")
    assert enrich_calls and {s["source_id"] for s in enrich_calls[0]["sources"]} <= lost_ids, enrich_calls
    found = sources(done)
    readable = {f"files__default: {own}": "expenses.txt", f"files__default: {tent}": "tent.txt"}
    # drawn on her own files only, each named by the entry of the call that checked it
    assert found and {s["id"]: s["label"] for s in found}.items() <= readable.items(), found
    assert "Berlin office budget review" not in done["output"]["output"]
    # more candidates each round, each asked about once, none again for the output's labels
    asked = Counter(s["source_id"] for call in enrich_calls for s in call["sources"])
    assert set(asked.values()) == {1} and 2 <= len(enrich_calls) <= FILL_ROUNDS, enrich_calls
