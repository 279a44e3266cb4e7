"""Lock order: deletes and access changes lock their documents first (in source_id order), as an ingest does, so they
cannot deadlock with an ingest or with each other; a transaction PostgreSQL still picks as a deadlock victim runs
again. Real concurrent transactions on the embedded PostgreSQL, put in order by lock waits the test observes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import numpy as np
import psycopg
import pytest
from engine_kit import rows

from appliance.postgres import EmbeddedPostgres
from quart_app.store import Database
from quart_app.store import access_store as store
from quart_app.store.database import CONFLICT_ATTEMPTS, Connection
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_indexed
from quart_app.store.errors import TransactionConflictError
from quart_app.store.queue_store import claim_batch, complete

LOCK_WAIT_S = 30.0


def _doc(source_id: str, content_hash: bytes) -> DocumentRecord:
    return DocumentRecord(source_id, "files__default", "t", "text/plain", 1, content_hash, 1)


def _chunks(source_id: str, version: str) -> list[ChunkRecord]:
    return [ChunkRecord(i, f"{version} chunk {i}", i * 10, 5, f"{source_id}/{version}/{i}".encode()) for i in range(3)]


@asynccontextmanager
async def _sessions(dsn: str, count: int) -> AsyncIterator[list[Connection]]:
    """`count` connections of their own (autocommit, as the pool's), closed afterwards."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(await psycopg.AsyncConnection.connect(dsn, autocommit=True))
            for _ in range(count)
        ]


async def _until_waiting_for_lock(probe: Connection, session: Connection | None = None) -> None:
    """Return once `session` (None: any session of this database) waits for a lock another transaction holds."""
    query = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    params: tuple[int, ...] = ()
    if session is not None:
        query, params = query + " AND pid = %s", (session.info.backend_pid,)
    async with asyncio.timeout(LOCK_WAIT_S):
        # PostgreSQL signals no event when a session starts waiting: its view is read until it shows the wait
        while True:
            if await (await probe.execute(query.encode(), params)).fetchone() is not None:
                return
            await asyncio.sleep(0.005)


async def test_a_reindex_and_deleting_a_reader_it_drops_both_commit(db: Database, fresh_dsn: str) -> None:
    source = "files__default: 1"
    async with db.connection() as conn:
        await write_indexed(conn, _doc(source, b"v1"), _chunks(source, "v1"), ["carol"])
    async with _sessions(fresh_dsn, 4) as (blocker, ingest_conn, delete_conn, probe):
        # the re-index has upserted its document and waits at its old chunks: it holds the document row
        await blocker.execute("BEGIN")
        await blocker.execute("SELECT id FROM chunks WHERE source_id = %s FOR UPDATE", (source,))
        reindex = asyncio.create_task(
            write_indexed(ingest_conn, _doc(source, b"v2"), _chunks(source, "v2"), ["alice", "bob"])
        )
        await _until_waiting_for_lock(probe, ingest_conn)
        # carol is not among the new readers, so nothing in this process orders the two (SourceOrder keys differ)
        delete = asyncio.create_task(store.delete_user(delete_conn, "carol"))
        await _until_waiting_for_lock(probe, delete_conn)
        await blocker.execute("COMMIT")
        # before: the delete held carol's access row and waited for the document, the re-index the other way round
        written, (_rows, orphans) = await asyncio.gather(reindex, delete)
    assert written.version == 2 and orphans == 0
    assert await rows(db, "SELECT user_id FROM access ORDER BY user_id") == [("alice",), ("bob",)]
    assert await rows(db, "SELECT DISTINCT version FROM chunks") == [(2,)]


async def test_deleting_a_source_and_deleting_its_only_reader_both_commit(db: Database, fresh_dsn: str) -> None:
    first, last = "files__default: 1", "files__default: 9"
    for source in (first, last):
        async with db.connection() as conn:
            await write_indexed(conn, _doc(source, b"v1"), _chunks(source, "v1"), ["carol"])
    async with _sessions(fresh_dsn, 4) as (blocker, user_conn, source_conn, probe):
        await blocker.execute("BEGIN")
        await blocker.execute("SELECT 1 FROM access WHERE user_id = 'carol' AND source_id = %s FOR UPDATE", (last,))
        # the user delete has taken carol's first access row and waits at the last one
        delete_user = asyncio.create_task(store.delete_user(user_conn, "carol"))
        await _until_waiting_for_lock(probe, user_conn)
        delete_source = asyncio.create_task(store.delete_sources(source_conn, [first]))
        await _until_waiting_for_lock(probe, source_conn)
        await blocker.execute("COMMIT")
        # before: the source delete held the document and waited for its access row, the user delete the reverse
        (removed, orphans), _deleted = await asyncio.gather(delete_user, delete_source)
    assert (removed, orphans) == (2, 2)
    assert await rows(db, "SELECT source_id FROM documents") == []
    assert await rows(db, "SELECT user_id FROM access") == []


async def test_an_embedding_write_and_deleting_a_document_of_its_batch_both_commit(
    db: Database, fresh_dsn: str
) -> None:
    kept, deleted = "files__default: 1", "files__default: 2"
    # chunk ids 1, 2 (kept) and 3, 4 (deleted); 1 and 4 share their text, so the worker writes them together first
    texts = {kept: ["shared text", "kept text"], deleted: ["deleted text", "shared text"]}
    for source in (kept, deleted):
        chunks = [ChunkRecord(i, text, i * 10, 2, text.encode()) for i, text in enumerate(texts[source])]
        async with db.connection() as conn:
            await write_indexed(conn, _doc(source, b"v1"), chunks, ["alice"])
    async with db.connection() as conn:
        claim = await claim_batch(conn, batch_tokens=100, lease_s=600)
    assert [c.id for c in claim.chunks] == [1, 2, 3, 4]
    vectors = {c.text_hash: np.full(384, 0.05, dtype=np.float32) for c in claim.chunks}
    async with _sessions(fresh_dsn, 3) as (blocker, delete_conn, probe), db.connection() as worker_conn:
        await blocker.execute("BEGIN")
        await blocker.execute("SELECT 1 FROM chunks WHERE id = 2 FOR UPDATE")
        write = asyncio.create_task(complete(worker_conn, claim, vectors, list(vectors)))
        # before: the worker took chunks 1 and 4, then waited for chunk 2; now it skips the held row and commits
        waiting = asyncio.create_task(_until_waiting_for_lock(probe, worker_conn))
        await asyncio.wait({write, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        delete = asyncio.create_task(store.delete_sources(delete_conn, [deleted]))
        if not write.done():
            await _until_waiting_for_lock(probe, delete_conn)  # the delete has chunk 3 and waits for chunk 4
        await blocker.execute("COMMIT")
        # before: the worker then waited for chunk 3, held by the delete
        written, removed = await asyncio.gather(write, delete)
    assert removed == 1 and written == 3  # chunk 2 was held, so it keeps its lease and is embedded again later
    assert await rows(db, "SELECT id, embed_state FROM chunks ORDER BY id") == [(1, "embedded"), (2, "queued")]


class _DeadlockRival:
    """Makes attempts of a transaction deadlock victims: the rival holds row 2, the attempt takes row 1, the rival asks
    for row 1, then the attempt asks for row 2 and closes the cycle. The rival never runs the deadlock check (its
    deadlock_timeout is 10 minutes), so PostgreSQL's check in the attempt's session finds the cycle and aborts it."""

    def __init__(self, rival: Connection, probe: Connection) -> None:
        self.rival = rival
        self.probe = probe
        self.attempts = 0
        self.ready = asyncio.Event()
        self.holding = asyncio.Event()
        self.rival_waiting = asyncio.Event()

    def let_the_next_attempt_run_alone(self) -> None:
        self.ready.set()
        self.rival_waiting.set()

    async def work(self, conn: Connection) -> str:
        """The transaction under test: each attempt starts once the rival is ready for it."""
        await self.ready.wait()
        self.ready.clear()
        self.attempts += 1
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM conflict_rows WHERE id = 1 FOR UPDATE")
            self.holding.set()
            await self.rival_waiting.wait()
            self.rival_waiting.clear()
            await conn.execute("SELECT 1 FROM conflict_rows WHERE id = 2 FOR UPDATE")
        return "committed"

    async def deadlock_next_attempt(self) -> None:
        await self.rival.execute("BEGIN")
        await self.rival.execute("SELECT 1 FROM conflict_rows WHERE id = 2 FOR UPDATE")
        self.ready.set()
        await self.holding.wait()
        self.holding.clear()
        asked = asyncio.create_task(self.rival.execute("SELECT 1 FROM conflict_rows WHERE id = 1 FOR UPDATE"))
        await _until_waiting_for_lock(self.probe, self.rival)
        self.rival_waiting.set()
        await asked  # granted once the attempt is aborted as the deadlock victim
        await self.rival.execute("COMMIT")


@pytest.fixture
async def rival(fresh_dsn: str, pg_cluster: EmbeddedPostgres) -> AsyncIterator[_DeadlockRival]:
    database = fresh_dsn.split("@/", 1)[1].split("?")[0]
    superuser = f"postgresql://postgres@/{database}?host={pg_cluster.socket_dir}"
    # the probe is a superuser too: other roles do not see the wait state of a superuser's session
    async with _sessions(fresh_dsn, 1) as (owner,), _sessions(superuser, 2) as (rival_conn, probe):
        await owner.execute("CREATE TABLE conflict_rows (id int PRIMARY KEY)")
        await owner.execute("INSERT INTO conflict_rows VALUES (1), (2)")
        await rival_conn.execute("SET deadlock_timeout = '10min'")  # a superuser setting
        yield _DeadlockRival(rival_conn, probe)


async def test_a_deadlock_victim_runs_again_and_commits(
    db: Database, rival: _DeadlockRival, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="quart_app.store.database")
    result = asyncio.create_task(db.run_transaction(rival.work, "the test's transaction"))
    await rival.deadlock_next_attempt()
    rival.let_the_next_attempt_run_alone()
    assert await result == "committed" and rival.attempts == 2
    assert [r.getMessage() for r in caplog.records] == [
        "the test's transaction: deadlock detected; running it again (attempt 2)"
    ]


async def test_a_transaction_that_keeps_deadlocking_is_a_conflict_error_after_every_attempt(
    db: Database, rival: _DeadlockRival
) -> None:
    assert CONFLICT_ATTEMPTS == 4
    result = asyncio.create_task(db.run_transaction(rival.work, "the test's transaction"))
    for _ in range(CONFLICT_ATTEMPTS):
        await rival.deadlock_next_attempt()
    message = (
        r"^the test's transaction conflicted with concurrent transactions 4 times \(deadlock detected\); retry later$"
    )
    with pytest.raises(TransactionConflictError, match=message):
        await result
    assert rival.attempts == CONFLICT_ATTEMPTS
