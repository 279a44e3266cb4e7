"""retrieval.ef_search auto: the HNSW search width follows the index's size as PostgreSQL estimates it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from corpus_writer import Corpus
from retrieval_embedder import MiniLmEmbedder

from appliance.retrieval_config import RetrievalConfig
from quart_app.services.retrieval import RetrievalService, auto_ef_search
from quart_app.store.database import Database
from quart_app.store.search_store import Hit, SearchStore


def test_the_width_is_the_measured_one_at_both_measured_sizes_and_bounded() -> None:
    assert auto_ef_search(0) == 200
    assert auto_ef_search(200_000) == 200  # recall@10 0.959-0.964 there
    assert auto_ef_search(250_000) == 200
    assert auto_ef_search(625_000) == 350
    assert auto_ef_search(1_000_000) == 500  # 0.953 there, where 200 gave 0.928-0.940
    assert auto_ef_search(10_000_000) == 1000  # pgvector's largest


class RecordingStore(SearchStore):
    """The real store, with PostgreSQL's estimate replaced by `estimate` (a million chunks without writing them);
    remembers the ef_search each vector search was given and how often the estimate was read."""

    def __init__(self, db: Database, estimate: int) -> None:
        super().__init__(db)
        self.estimate = estimate
        self.estimates_read = 0
        self.ef_searches: list[int] = []

    async def estimated_chunks(self) -> int:
        self.estimates_read += 1
        return self.estimate

    async def vector_search(
        self, user_id: str, embedding: Sequence[float], limit: int, *args: Any, **kwargs: Any
    ) -> list[Hit]:
        self.ef_searches.append(kwargs["ef_search"])
        return await super().vector_search(user_id, embedding, limit, *args, **kwargs)


async def _fill(corpus: Corpus, documents: int) -> None:
    for n in range(documents):
        await corpus.add(f"files__default: doc{n}.txt", [f"Note {n} about the weekly backup of server {n}."], ["alice"])


async def test_the_estimate_is_what_postgres_last_analysed(db: Database, fresh_dsn: str, corpus: Corpus) -> None:
    store = SearchStore(db)
    await _fill(corpus, 30)
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("ANALYZE chunks")
        counted = conn.execute("SELECT count(*) FROM chunks").fetchone()
    assert counted is not None and counted[0] >= 30
    assert await store.estimated_chunks() == counted[0]


async def test_auto_passes_the_width_for_the_estimate_and_a_number_is_kept(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder
) -> None:
    await _fill(corpus, 30)
    store = RecordingStore(db, 1_000_000)
    hnsw_always = {"exact_search_below": 0, "vector_candidates": 10}
    auto = RetrievalService(store, embedder, RetrievalConfig(**hnsw_always))
    assert await auto.retrieve("alice", "weekly backup", 5)
    store.estimate = 0
    assert await auto.retrieve("alice", "weekly backup", 5)  # within CHUNK_ESTIMATE_TTL_S: not read again
    fixed = RetrievalService(store, embedder, RetrievalConfig(ef_search=77, **hnsw_always))
    assert await fixed.retrieve("alice", "weekly backup", 5)
    assert store.ef_searches == [500, 500, 77]
    assert store.estimates_read == 1
