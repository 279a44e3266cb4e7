"""The HNSW path under a selective ACL filter: iterative scan keeps going until the user's rows are found, and where
pgvector's scan gives up (hnsw.max_scan_tuples) the service answers from the exact path."""

from __future__ import annotations

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from appliance.retrieval_config import RetrievalConfig
from quart_app.services.retrieval import RetrievalService
from quart_app.store.database import Database
from quart_app.store.search_filters import vector_literal
from quart_app.store.search_store import SearchStore

# pgvector's default hnsw.max_scan_tuples is 20,000: a crowd above it, and a user above exact_search_below (2,000)
CROWD, SPARSE = 24_000, 2_100


def fill(dsn: str) -> np.ndarray:
    """3000 chunks readable by 'crowd', 30 by 'few'; returns a query vector."""
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3030, 384)).astype(np.float32)
    with psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        for doc, user in (("crowd-doc", "crowd"), ("few-doc", "few")):
            conn.execute(
                "INSERT INTO documents (source_id, provider, title, mimetype, modified, content_hash, size, state)"
                " VALUES (%s, 'files__default', %s, 'text/plain', 0, '\\x00', 1, 'indexed')",
                (doc, doc),
            )
            conn.execute("INSERT INTO access (user_id, source_id) VALUES (%s, %s)", (user, doc))
        with conn.cursor().copy(
            "COPY chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash, embedding,"
            " embed_state) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "int4", "int4", "text", "int4", "int4", "bytea", "vector", "text"])
            for n, vector in enumerate(vectors):
                doc = "few-doc" if n >= 3000 else "crowd-doc"
                copy.write_row((doc, 1, n, f"chunk {n}", 0, 2, b"h", vector, "embedded"))
        conn.execute("ANALYZE")
        # make the planner take the HNSW index even where it would rather sort: the case issue #320 hit
        dbname = conn.info.dbname
        conn.execute(f'ALTER DATABASE "{dbname}" SET enable_sort = off')
        conn.execute(f'ALTER DATABASE "{dbname}" SET enable_seqscan = off')
    return rng.standard_normal(384).astype(np.float32)


async def test_iterative_scan_does_not_starve_a_selective_filter(db: Database, fresh_dsn: str) -> None:
    query = fill(fresh_dsn)
    # proof that the setup reproduces starvation: the same query without iterative scan finds almost nothing
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT c.id FROM chunks c WHERE EXISTS (SELECT 1 FROM access a WHERE a.user_id = 'few'"
                " AND a.source_id = c.source_id) ORDER BY c.embedding <=> %s::vector LIMIT 10",
                (vector_literal(query.tolist()),),
            ).fetchall()
        )
        assert "chunks_embedding_hnsw_idx" in plan
        conn.execute("SET hnsw.iterative_scan = off")
        starved = conn.execute(
            "SELECT c.id FROM chunks c WHERE EXISTS (SELECT 1 FROM access a WHERE a.user_id = 'few'"
            " AND a.source_id = c.source_id) ORDER BY c.embedding <=> %s::vector LIMIT 10",
            (vector_literal(query.tolist()),),
        ).fetchall()
        assert len(starved) < 10
    await db.close()
    fresh = Database(fresh_dsn)  # new connections pick up the database-level settings
    await fresh.open(timeout_s=10)
    try:
        hits = await SearchStore(fresh).vector_search("few", list(map(float, query)), 10, exact=False, ef_search=40)
        assert len(hits) == 10
        assert {h.source_id for h in hits} == {"few-doc"}
        exact = await SearchStore(fresh).vector_search("few", list(map(float, query)), 10, exact=True)
        assert [h.chunk_id for h in exact][:5] == [h.chunk_id for h in hits][:5]
    finally:
        await fresh.close()


class _FixedEmbedder:
    """Embeds every question as one vector, so the test decides where the question lies."""

    def __init__(self, vector: list[float]) -> None:
        self.vector = vector

    async def embed(self, texts: list[str], input_type: str) -> list[list[float]]:
        return [self.vector for _ in texts]


def fill_sparse_user_far_away(dsn: str) -> np.ndarray:
    """CROWD chunks of 'crowd' near the returned question, SPARSE of 'sparse' (one per document) at its antipode."""
    rng = np.random.default_rng(7)
    question = rng.standard_normal(384).astype(np.float32)
    question /= np.linalg.norm(question)
    noise = 0.3 / np.sqrt(384)
    crowd = question + noise * rng.standard_normal((CROWD, 384)).astype(np.float32)
    sparse = -question + noise * rng.standard_normal((SPARSE, 384)).astype(np.float32)
    docs = [("crowd-doc", "crowd")] + [(f"sparse-{n}", "sparse") for n in range(SPARSE)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO documents (source_id, provider, title, mimetype, modified, content_hash, size, state)"
                " VALUES (%s, 'files__default', %s, 'text/plain', 0, '\\x00', 1, 'indexed')",
                [(doc, doc) for doc, _ in docs],
            )
            cur.executemany("INSERT INTO access (user_id, source_id) VALUES (%s, %s)", [(u, d) for d, u in docs])
        conn.execute("DROP INDEX chunks_embedding_hnsw_idx")  # built once after the copy: minutes faster
        with conn.cursor().copy(
            "COPY chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash, embedding,"
            " embed_state) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "int4", "int4", "text", "int4", "int4", "bytea", "vector", "text"])
            for n, vector in enumerate(np.vstack([crowd, sparse])):
                doc = f"sparse-{n - CROWD}" if n >= CROWD else "crowd-doc"
                copy.write_row((doc, 1, n, f"chunk {n}", 0, 2, b"h", vector, "embedded"))
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops)")
        conn.execute("ANALYZE")
    return question


async def test_a_user_the_hnsw_scan_gives_up_on_gets_the_exact_nearest_chunks(db: Database, fresh_dsn: str) -> None:
    question = list(map(float, fill_sparse_user_far_away(fresh_dsn)))
    store = SearchStore(db)
    # the setup reproduces the cut: pgvector stops after 20,000 index rows, nearly all of them the crowd's
    assert len(await store.vector_search("sparse", question, 20, exact=False, ef_search=200)) < 20
    exact = await store.vector_search("sparse", question, 20, exact=True)
    assert len(exact) == 20
    service = RetrievalService(store, _FixedEmbedder(question), RetrievalConfig())  # exact_search_below: 2000
    chunks = await service.retrieve("sparse", "zzzz qqqq", 20)  # no word the lexical leg could find
    # before: the 5 chunks the HNSW scan had reached
    assert [c.chunk_id for c in chunks] == [h.chunk_id for h in exact]
