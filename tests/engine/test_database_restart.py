"""The connection pool across real PostgreSQL restarts, kills and outages (a server of its own, stopped and started)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg
import pytest
from restartable_postgres import RestartablePostgres

from quart_app.store import Database, DatabaseUnavailableError
from quart_app.store.errors import StatementTimeoutError


@pytest.fixture
async def pool(restartable_pg: RestartablePostgres) -> AsyncIterator[Database]:
    database = Database(restartable_pg.test_dsn, min_size=1, max_size=6, acquire_timeout_s=3.0)
    await database.open(timeout_s=10)
    yield database
    await database.close()


async def _fill(db: Database, connections: int) -> set[int]:
    """Open `connections` pooled connections at once; returns their backend pids."""
    pids: set[int] = set()
    # every holder keeps its connection until all have one, so none is handed out twice (a sleep was not enough
    # on a loaded machine)
    all_held = asyncio.Barrier(connections)

    async def hold() -> None:
        async with db.connection() as conn:
            cur = await conn.execute("SELECT pg_backend_pid()")
            row = await cur.fetchone()
            assert row is not None
            pids.add(int(row[0]))
            await asyncio.wait_for(all_held.wait(), 30)

    await asyncio.gather(*(hold() for _ in range(connections)))
    return pids


async def _pid(db: Database) -> int:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT pg_backend_pid()")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.parametrize("how", ["fast shutdown", "kill -9"])
async def test_no_request_sees_a_broken_connection_after_a_restart(
    pool: Database, restartable_pg: RestartablePostgres, how: str
) -> None:
    before = await _fill(pool, 5)
    assert len(before) == 5
    if how == "kill -9":
        restartable_pg.kill()
    else:
        restartable_pg.stop_fast()
    restartable_pg.start()
    # every pooled connection died with the old server; each request still gets a working one
    after = [await _pid(pool) for _ in range(10)]
    assert not set(after) & before
    assert pool.available


async def test_an_outage_is_a_named_error_and_the_pool_recovers_without_reopening(
    pool: Database, restartable_pg: RestartablePostgres
) -> None:
    await _fill(pool, 3)
    restartable_pg.stop_fast()
    with pytest.raises(DatabaseUnavailableError, match=r"^PostgreSQL is not reachable \(connection .*failed"):
        await _pid(pool)
    assert not pool.available
    # while it stays away, requests are refused after a short wait, with the time it has been away
    with pytest.raises(DatabaseUnavailableError, match=r"^PostgreSQL is not reachable \(for \d+ s\); retry once"):
        await _pid(pool)
    assert not await pool.reachable()
    restartable_pg.start()
    deadline = time.monotonic() + 60
    while not await pool.reachable():
        assert time.monotonic() < deadline, "the pool did not reconnect within 60 s of PostgreSQL's return"
        await asyncio.sleep(0.2)
    assert pool.available


async def test_a_connection_broken_mid_statement_is_a_named_error(
    pool: Database, restartable_pg: RestartablePostgres
) -> None:
    async def long_statement() -> None:
        async with pool.connection() as conn:
            await conn.execute("SELECT pg_sleep(60)")

    statement = asyncio.create_task(long_statement())
    for _ in range(600):
        if await _running_sleeps(restartable_pg):
            break
        await asyncio.sleep(0.05)
    restartable_pg.stop_fast()
    with pytest.raises(DatabaseUnavailableError, match=r"^the connection to PostgreSQL broke during the request"):
        await statement


async def test_an_error_on_a_live_connection_is_not_an_outage(pool: Database) -> None:
    with pytest.raises(StatementTimeoutError):
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = 50")
            await conn.execute("SELECT pg_sleep(5)")
    assert pool.available
    assert await pool.reachable()


async def _running_sleeps(server: RestartablePostgres) -> bool:
    async with await psycopg.AsyncConnection.connect(server.test_dsn) as conn:
        cur = await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'")
        row = await cur.fetchone()
        return row is not None and int(row[0]) > 0
