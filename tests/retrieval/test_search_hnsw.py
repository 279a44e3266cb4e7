"""The HNSW path under a selective ACL filter: iterative scan keeps going until the user's rows are found."""

from __future__ import annotations

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from quart_app.store.database import Database
from quart_app.store.search_store import SearchStore, vector_literal


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
