"""The PostgreSQL connection pool: opened explicitly, pgvector types registered on every connection.

Connections are checked when taken from the pool: after a PostgreSQL restart every idle connection is dead, and the
first failed check replaces them all, so no request sees a broken connection. A database that cannot be reached
raises DatabaseUnavailableError (the routes answer 503 + cc-retry); while it stays away, requests (and the claim
store's) wait only `OUTAGE_WAIT_S` for a connection instead of the full acquire timeout, and the first request of an
outage nobody noticed yet asks PostgreSQL itself after `OUTAGE_PROBE_AFTER_S` instead of waiting that timeout out.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TypeVar

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from quart_app.store.database_failure import loggable_message
from quart_app.store.database_outage import DatabaseOutage, DatabaseReachability
from quart_app.store.errors import (
    DatabaseClosedError,
    DatabaseUnavailableError,
    LockTimeoutError,
    StatementTimeoutError,
    TransactionConflictError,
)
from quart_app.store.migration_lock import migrating_connection
from quart_app.store.migrator import MigrationResult, apply_migrations
from quart_app.store.pgvector_check import require_pgvector
from quart_app.store.pool_failure_log import PoolFailureRepeats

logger = logging.getLogger(__name__)

Connection = AsyncConnection[TupleRow]
T = TypeVar("T")

# seconds one connection attempt may take (an unreachable TCP host would otherwise hang for the OS timeout)
CONNECT_TIMEOUT_S = 10
# a failed (re)connection is retried with backoff for this long, then the next request starts a fresh attempt:
# short, so the pool notices a returned database within seconds instead of after a long backoff step
RECONNECT_TIMEOUT_S = 10.0
# how often open() tries a server that does not accept connections yet
SERVER_WAIT_POLL_S = 0.2
# while the database is known to be away, a request waits this long for a connection before its 503
OUTAGE_WAIT_S = 2.0
# a request without a connection after this long asks PostgreSQL for a new one: the first request of an outage
# nobody noticed yet answers its 503 after this (and the probe's connect), not after the whole acquire timeout
OUTAGE_PROBE_AFTER_S = 2.0
# the probe's own connect timeout (an unreachable TCP host answers nothing)
PROBE_CONNECT_TIMEOUT_S = 2
# a refused connection whose FATAL says so comes from a server at max_connections: up and serving, only full (libpq
# gives no SQLSTATE for a failed connect, only the server's message)
CONNECTION_LIMIT_MESSAGES = ("too many clients", "connection slots are reserved")
# a transaction PostgreSQL rolled back as a deadlock victim or for a serialization failure runs again this many
# times in all, after a short jittered pause (the other transaction usually commits within milliseconds)
CONFLICT_ATTEMPTS = 4
CONFLICT_BACKOFF_S = 0.05
# what PostgreSQL rolls back for a conflict with another transaction: running it again can succeed
CONFLICT_ERRORS = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


async def lift_statement_timeout(conn: Connection) -> None:
    """No statement_timeout for the rest of the current transaction: a bulk write or delete cut halfway would roll
    back and fail the same way on every retry. Lock waits stay bounded by lock_timeout."""
    await conn.execute("SET LOCAL statement_timeout = 0")


def _busy_error(
    pool: AsyncConnectionPool[Connection], what: str, waited_s: float, fix: str
) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(f"all {pool.max_size} {what} stayed busy for {waited_s:g} s; retry later{fix}")


class Database:
    """One pool per process; `open()` waits up to a timeout, `close()` is idempotent.

    Pool connections cancel a statement after `statement_timeout_s` and a lock wait after `lock_timeout_s` (0: no
    limit), raised as StatementTimeoutError / LockTimeoutError; bulk writes call `lift_statement_timeout`. Migrations
    run on a connection of their own, without either limit.
    """

    def __init__(
        self,
        dsn: str,
        min_size: int = 1,
        max_size: int = 8,
        *,
        statement_timeout_s: float = 0.0,
        lock_timeout_s: float = 0.0,
        acquire_timeout_s: float = 30.0,
        reachability: DatabaseReachability | None = None,
    ) -> None:
        self._dsn = dsn
        self._acquire_timeout_s = acquire_timeout_s
        self._statement_timeout_s = statement_timeout_s
        self._lock_timeout_s = lock_timeout_s
        self._pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=self._configure,
            check=self._check,
            timeout=acquire_timeout_s,
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            # autocommit: each `conn.transaction()` is a real transaction, never a savepoint in a hidden one
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            name="ccb-store",
        )
        self._state = "new"
        # whether PostgreSQL answers, or since when and why not: the app's one record of it, shared with its earlier
        # opening attempts (GET /status reads it); the pool's open() clears what an attempt that failed left in it
        self._reachability = reachability or DatabaseReachability()
        # one probe at a time: the requests that waited with it learn its answer instead of probing again
        self._probe_lock = asyncio.Lock()
        self._pool_failure_repeats = PoolFailureRepeats(self._reachability, self._pool.name)

    async def _configure(self, conn: Connection) -> None:
        # session settings, not startup options: a pooler in front of an external database may refuse `options`
        await conn.execute(
            "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
            (f"{round(self._statement_timeout_s * 1000)}ms", f"{round(self._lock_timeout_s * 1000)}ms"),
        )
        # the vector type exists from migration 0001 on; before that the first migrate() runs on a plain connection
        cur = await conn.execute("SELECT 1 FROM pg_type WHERE typname = 'vector'")
        if await cur.fetchone() is not None:
            await register_vector_async(conn)

    @property
    def dsn(self) -> str:
        """The connection URL (may contain a password: never log it)."""
        return self._dsn

    @property
    def available(self) -> bool:
        """False from a failed attempt to reach the database until the next connection works."""
        return self._reachability.outage is None

    @property
    def outage(self) -> DatabaseOutage | None:
        """Since when and why the database is unreachable; None while it answers."""
        return self._reachability.outage

    async def open(self, timeout_s: float = 30.0) -> None:
        """Open the pool and wait until `min_size` connections work, or raise DatabaseUnavailableError."""
        if self._state == "closed":
            raise DatabaseClosedError("the database pool was closed; create a new Database to reconnect")
        if self._state == "open":
            return
        started = time.monotonic()
        refused = await self._wait_for_server(timeout_s)
        if refused is not None:
            # the pool's own attempts would only log the same failure again, a warning each
            self._state = "closed"
            raise DatabaseUnavailableError(
                f"PostgreSQL did not accept connections within {timeout_s:g} s ({refused}); check that it runs and"
                " that pgvector.connection / EXTERNAL_DB is right"
            )
        try:
            await self._pool.open(wait=True, timeout=max(timeout_s - (time.monotonic() - started), 1.0))
        except PoolTimeout as exc:
            await self._pool.close()
            self._state = "closed"
            raise DatabaseUnavailableError(
                f"PostgreSQL did not accept connections within {timeout_s:g} s; check that it runs and that"
                " pgvector.connection / EXTERNAL_DB is right"
            ) from exc
        self._reachability.reachable()
        self._state = "open"
        logging.getLogger("psycopg.pool").addFilter(self._pool_failure_repeats)
        logger.info("database pool open (min %d, max %d)", self._pool.min_size, self._pool.max_size)

    async def _wait_for_server(self, timeout_s: float) -> str | None:
        """Wait quietly until PostgreSQL accepts a connection: on a first start the embedded server is still being
        initialised when the app opens its pool, whose own attempts would each log a connection-failure warning.
        Returns None once it does, or its last refusal after `timeout_s`. The wait is logged once per outage: the
        engine's next opening attempts wait in it again."""
        deadline = time.monotonic() + timeout_s
        waiting_since: float | None = None
        while True:
            try:
                conn = await AsyncConnection.connect(self._dsn, connect_timeout=CONNECT_TIMEOUT_S)
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    self._reachability.unreachable(loggable_message(exc))
                    return loggable_message(exc)
                if waiting_since is None:
                    waiting_since = time.monotonic()
                    if self._reachability.outage is None:
                        logger.info("waiting for PostgreSQL to accept connections (%s)", loggable_message(exc))
                self._reachability.unreachable(loggable_message(exc))
                await asyncio.sleep(SERVER_WAIT_POLL_S)
                continue
            await conn.close()
            self._reachability.reachable()
            if waiting_since is not None:
                logger.info("PostgreSQL accepts connections after %.1f s", time.monotonic() - waiting_since)
            return None

    async def close(self) -> None:
        """Close every connection; safe to call twice."""
        if self._state == "closed":
            return
        self._state = "closed"
        await self._pool.close()
        logging.getLogger("psycopg.pool").removeFilter(self._pool_failure_repeats)
        logger.info("database pool closed")

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _check(self, conn: Connection) -> None:
        """The pool's check before handing out an idle connection."""
        try:
            await AsyncConnectionPool.check_connection(conn)
        except psycopg.Error:
            # a restart or failover broke every idle connection at once: replace them all now, not one per
            # backoff step of the pool's check loop
            logger.warning("a pooled database connection is broken (PostgreSQL restarted?); renewing the pool")
            await self._pool.drain()
            raise

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled autocommit connection; group statements with `async with conn.transaction()`.

        Raises DatabaseUnavailableError when no connection comes in time or the connection breaks mid-use.
        """
        if self._state != "open":
            raise DatabaseClosedError(f"the database pool is {self._state}; call `await db.open()` first")
        conn = await self.take(
            self._pool, self._acquire_timeout_s, "database connections", " or raise pgvector.pool_max"
        )
        self._mark_back()
        try:
            async with conn:
                yield conn
        except psycopg.errors.QueryCanceled as exc:
            if "statement timeout" not in str(exc):
                raise  # cancelled by an administrator (pg_cancel_backend)
            raise StatementTimeoutError(
                f"a database statement ran longer than pgvector.statement_timeout_s ({self._statement_timeout_s:g} s)"
                " and was cancelled; retry, or raise the limit if the database is this slow"
            ) from exc
        except psycopg.errors.LockNotAvailable as exc:
            raise LockTimeoutError(
                f"a database statement waited longer than pgvector.lock_timeout_s ({self._lock_timeout_s:g} s) for a"
                " lock held by another transaction (a long delete, a migration, another session); retry later"
            ) from exc
        except psycopg.OperationalError as exc:
            if not conn.closed:
                raise  # a deadlock, a cancelled statement…: the database itself is fine
            self._mark_away(loggable_message(exc))
            raise DatabaseUnavailableError(
                f"the connection to PostgreSQL broke during the request ({loggable_message(exc)}); retry it"
            ) from exc
        finally:
            await self._pool.putconn(conn)

    async def run_transaction(self, work: Callable[[Connection], Awaitable[T]], what: str) -> T:
        """`work(conn)` (one `conn.transaction()`, nothing done outside it) on a pooled connection; when PostgreSQL
        rolls it back for a deadlock or a serialization failure it runs again, up to CONFLICT_ATTEMPTS times in all.

        Raises TransactionConflictError (503 + cc-retry) when every attempt conflicted; `what` names the work in it.
        """
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                async with self.connection() as conn:
                    return await work(conn)
            except CONFLICT_ERRORS as exc:
                if attempt == CONFLICT_ATTEMPTS:
                    raise TransactionConflictError(
                        f"{what} conflicted with concurrent transactions {CONFLICT_ATTEMPTS} times"
                        f" ({loggable_message(exc)}); retry later"
                    ) from exc
                logger.warning("%s: %s; running it again (attempt %d)", what, loggable_message(exc), attempt + 1)
                await asyncio.sleep(CONFLICT_BACKOFF_S * attempt * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def take(self, pool: AsyncConnectionPool[Connection], wait_s: float, what: str, fix: str = "") -> Connection:
        """A connection of `pool` (this one, or the claim store's on the same database) within `wait_s`.

        While the database is known to be away, waits OUTAGE_WAIT_S at most. Otherwise, after OUTAGE_PROBE_AFTER_S
        without one, PostgreSQL is asked for a new connection: if it refuses, the outage is marked and the 503 comes
        now; if it takes it, every connection is busy and the wait goes on. Raises DatabaseUnavailableError naming
        `what` (and `fix`) when all stayed busy.
        """
        if not self.available:
            try:
                return await pool.getconn(min(OUTAGE_WAIT_S, wait_s))
            except PoolTimeout as exc:
                raise self._away_error() from exc
        first_s = min(OUTAGE_PROBE_AFTER_S, wait_s)
        try:
            return await pool.getconn(first_s)
        except PoolTimeout as exc:
            if (unreachable := await self._probe(first_s)) is not None:
                raise unreachable from exc
            if first_s >= wait_s:
                raise _busy_error(pool, what, wait_s, fix) from exc
        try:
            return await pool.getconn(wait_s - first_s)
        except PoolTimeout as exc:
            raise await self._probe(wait_s) or _busy_error(pool, what, wait_s, fix) from exc

    def _away_error(self) -> DatabaseUnavailableError:
        outage = self._reachability.outage
        away_s = 0.0 if outage is None else max(0.0, time.time() - outage.since)
        return DatabaseUnavailableError(f"PostgreSQL is not reachable (for {away_s:.0f} s); retry once it is back")

    async def _probe(self, waited_s: float) -> DatabaseUnavailableError | None:
        """None when PostgreSQL takes a new connection or refuses it only for its connection limit; else the error to
        answer, with the outage marked."""
        async with self._probe_lock:
            if not self.available:
                return self._away_error()
            try:
                probe = await psycopg.AsyncConnection.connect(self._dsn, connect_timeout=PROBE_CONNECT_TIMEOUT_S)
            except psycopg.Error as exc:
                if any(message in str(exc) for message in CONNECTION_LIMIT_MESSAGES):
                    return None
                self._mark_away(loggable_message(exc), waited_s)
                return DatabaseUnavailableError(
                    f"PostgreSQL is not reachable ({loggable_message(exc)}); retry once it is back"
                )
            await probe.close()
            return None

    def _mark_away(self, reason: str, waited_s: float | None = None) -> None:
        if self._reachability.outage is None:
            self._reachability.unreachable(reason)
            found = "a connection broke" if waited_s is None else f"no connection came within {waited_s:g} s"
            logger.warning(
                "PostgreSQL is unreachable (%s: %s); requests answer 503 + cc-retry within %g s until it is back",
                found,
                reason,
                OUTAGE_WAIT_S,
            )

    def _mark_back(self) -> None:
        outage = self._reachability.outage
        if outage is not None:
            logger.info("PostgreSQL is reachable again after %.0f s", max(0.0, time.time() - outage.since))
            self._reachability.reachable()

    async def reachable(self) -> bool:
        """True when a connection can be had and answers `SELECT 1` (the pull loops wait on this)."""
        try:
            async with self.connection() as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, DatabaseUnavailableError):
            return False
        return True

    async def migrate(
        self,
        model_id: str,
        dimension: int,
        reported_model: str | None = None,
        waiting: Callable[[str | None], None] = lambda _wait: None,
    ) -> MigrationResult:
        """Check pgvector (>= 0.8, created when missing), apply pending migrations and bind the embedding model;
        callers serialise on a lock (`waiting` is told whose, then None); PostgreSQL lost: DatabaseUnavailableError."""
        if self._state != "open":
            raise DatabaseClosedError(f"the database pool is {self._state}; call `await db.open()` first")
        conn: Connection | None = None
        try:
            conn = await migrating_connection(self._dsn)
            async with conn:
                version = await require_pgvector(conn)
                logger.info("pgvector %s", version)
                result = await apply_migrations(conn, model_id, dimension, reported_model, waiting)
        except psycopg.OperationalError as exc:
            if conn is not None and not conn.broken:
                raise  # a cancelled statement, a deadlock…: the database itself answers
            # PostgreSQL went away since the pool opened: the same outage as one found by open(), not a fault
            self._reachability.unreachable(loggable_message(exc))
            raise DatabaseUnavailableError(
                f"PostgreSQL went away while the schema was checked and migrated ({loggable_message(exc)}); nothing was"
                " applied half-way (a migration is one transaction)"
            ) from exc
        if result.applied or result.model_changed:
            # connections opened before the vector type existed must be re-configured
            await self._pool.drain()
        return result
