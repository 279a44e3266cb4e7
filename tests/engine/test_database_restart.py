"""The connection pool across real PostgreSQL restarts, kills and outages (a server of its own, stopped and started)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import psycopg
import pytest
from async_wait import wait_until
from restartable_postgres import RestartablePostgres

from quart_app.store import Database, DatabaseUnavailableError
from quart_app.store.claim_store import ClaimStore
from quart_app.store.database import OUTAGE_PROBE_AFTER_S
from quart_app.store.errors import StatementTimeoutError

DATABASE_LOGGER = "quart_app.store.database"


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
    await wait_until(lambda: _running_sleeps(restartable_pg), "the statement to run", timeout_s=30)
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


async def test_a_long_outage_logs_each_pool_failure_once_not_every_few_seconds(
    pool: Database, restartable_pg: RestartablePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    """While PostgreSQL stays away, every request made the pool try again and log each failed attempt (half a line a
    second, hours of them overnight): once the outage is known, each distinct failure is logged once."""
    restartable_pg.stop_fast()
    with caplog.at_level(logging.INFO):
        # ccb status --watch, the embedding worker and the status page keep asking during an outage
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            with pytest.raises(DatabaseUnavailableError):
                await _pid(pool)
            await asyncio.sleep(0.5)
        restartable_pg.start()
        await wait_until(pool.reachable, "the pool to reconnect after PostgreSQL's return")
    messages = [record.getMessage() for record in caplog.records]
    known = next(n for n, message in enumerate(messages) if message.startswith("PostgreSQL is unreachable ("))
    pool_lines = [message for message in messages[known:] if message.startswith(("error connecting", "reconnection"))]
    assert pool_lines and len(pool_lines) == len(set(pool_lines)), pool_lines
    assert [message for message in messages[known:] if message.startswith("PostgreSQL is reachable again after")]


async def test_the_first_request_of_an_outage_nobody_noticed_asks_postgresql_instead_of_waiting_the_acquire_timeout(
    restartable_pg: RestartablePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    """With nothing yet aware that PostgreSQL had stopped, the first request waited the pool's whole acquire timeout
    (30 s shipped) before its 503, and nothing in the log said why meanwhile. After OUTAGE_PROBE_AFTER_S without a
    connection it asks PostgreSQL for a new one: refused, so the 503 comes then, and the log says what was found."""
    assert OUTAGE_PROBE_AFTER_S == 2.0
    # an acquire timeout no test waits out: only the probe can end this request within the guard below
    database = Database(restartable_pg.test_dsn, min_size=1, max_size=4, acquire_timeout_s=3600.0)
    await database.open(timeout_s=10)
    try:
        await _pid(database)
        restartable_pg.stop_fast()
        unreachable = r"^PostgreSQL is not reachable \(connection .*failed"
        with (
            caplog.at_level(logging.WARNING, logger=DATABASE_LOGGER),
            pytest.raises(DatabaseUnavailableError, match=unreachable),
        ):
            await asyncio.wait_for(_pid(database), 120)
        assert not database.available
        assert any(
            message.startswith("PostgreSQL is unreachable (no connection came within 2 s: connection ")
            for message in caplog.messages
        ), caplog.messages
    finally:
        restartable_pg.start()
        await database.close()


async def test_a_claim_during_a_known_outage_is_refused_as_soon_as_a_request_is(
    pool: Database, restartable_pg: RestartablePostgres
) -> None:
    """The claim connections (PUT /loadSources, POST /updateAccess) had a pool of their own that knew nothing of an
    outage the request pool had found: an access change waited its whole access_wait_s (30 s) for a claim connection
    before its 503. They now wait OUTAGE_WAIT_S at most, as requests do."""
    claims = ClaimStore(pool)
    await claims.open(timeout_s=10)
    try:
        restartable_pg.stop_fast()
        with pytest.raises(DatabaseUnavailableError, match=r"^PostgreSQL is not reachable \(connection .*failed"):
            await _pid(pool)
        # a wait no test sits out: only the known outage can end this claim within the guard below
        with pytest.raises(DatabaseUnavailableError, match=r"^PostgreSQL is not reachable \(for \d+ s\); retry once"):
            async with asyncio.timeout(120), claims.wait_hold([("source", "files__default: 1")], 3600.0):
                pass
    finally:
        restartable_pg.start()
        await claims.close()


async def test_a_server_at_its_connection_limit_is_busy_not_away(restartable_pg: RestartablePostgres) -> None:
    """A probe refused for the connection limit ("remaining connection slots are reserved") comes from a PostgreSQL
    that answers: it was marked an outage, and every request then got "not reachable" 503s while the server served
    the connections it had. The request now waits on and is told the pool stayed busy; the database stays
    available."""
    database = Database(restartable_pg.test_dsn, min_size=1, max_size=1, acquire_timeout_s=4.0)
    await database.open(timeout_s=10)
    crowd: list[psycopg.AsyncConnection[tuple[object, ...]]] = []
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_the_only_connection() -> None:
        async with database.connection():
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_only_connection())
    try:
        await holding.wait()
        with pytest.raises(psycopg.OperationalError, match="connection slots are reserved"):
            while True:  # fill every slot the server has left
                crowd.append(await psycopg.AsyncConnection.connect(restartable_pg.test_dsn))
        with pytest.raises(DatabaseUnavailableError, match=r"^all 1 database connections stayed busy for 4 s"):
            await _pid(database)
        assert database.available
    finally:
        release.set()
        await holder
        for conn in crowd:
            await conn.close()
        await database.close()


async def test_the_burst_of_pool_failures_as_postgresql_goes_away_is_logged_once(
    pool: Database, restartable_pg: RestartablePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    """Seen on a real Nextcloud 34: as PostgreSQL stopped, 16 identical 'error connecting in ccb-store' warnings came
    within a second, before the app had found the outage (the requests' 2 s wait): each is logged once."""
    await _fill(pool, 6)
    restartable_pg.stop_fast()
    with caplog.at_level(logging.INFO):
        outcomes = await asyncio.gather(*(_pid(pool) for _ in range(6)), return_exceptions=True)
    assert all(isinstance(outcome, DatabaseUnavailableError) for outcome in outcomes), outcomes
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("error connecting in 'ccb-store'")]
    assert failures and len(failures) == len(set(failures)), failures
