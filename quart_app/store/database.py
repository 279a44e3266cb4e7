"""The PostgreSQL connection pool: opened explicitly, pgvector types registered on every connection."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from quart_app.store.errors import (
    DatabaseClosedError,
    DatabaseUnavailableError,
    LockTimeoutError,
    StatementTimeoutError,
)
from quart_app.store.migrator import MigrationResult, apply_migrations

logger = logging.getLogger(__name__)

Connection = AsyncConnection[TupleRow]


async def lift_statement_timeout(conn: Connection) -> None:
    """No statement_timeout for the rest of the current transaction: a bulk write or delete cut halfway would roll
    back and fail the same way on every retry. Lock waits stay bounded by lock_timeout."""
    await conn.execute("SET LOCAL statement_timeout = 0")


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
    ) -> None:
        self._dsn = dsn
        self._statement_timeout_s = statement_timeout_s
        self._lock_timeout_s = lock_timeout_s
        self._pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=self._configure,
            # autocommit: each `conn.transaction()` is a real transaction, never a savepoint in a hidden one
            kwargs={"autocommit": True},
            name="ccb-store",
        )
        self._state = "new"

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

    async def open(self, timeout_s: float = 30.0) -> None:
        """Open the pool and wait until `min_size` connections work, or raise DatabaseUnavailableError."""
        if self._state == "closed":
            raise DatabaseClosedError("the database pool was closed; create a new Database to reconnect")
        if self._state == "open":
            return
        try:
            await self._pool.open(wait=True, timeout=timeout_s)
        except PoolTimeout as exc:
            await self._pool.close()
            self._state = "closed"
            raise DatabaseUnavailableError(
                f"PostgreSQL did not accept connections within {timeout_s:g} s; check that it runs and that"
                " pgvector.connection / EXTERNAL_DB is right"
            ) from exc
        self._state = "open"
        logger.info("database pool open (min %d, max %d)", self._pool.min_size, self._pool.max_size)

    async def close(self) -> None:
        """Close every connection; safe to call twice."""
        if self._state == "closed":
            return
        self._state = "closed"
        await self._pool.close()
        logger.info("database pool closed")

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled autocommit connection; group statements with `async with conn.transaction()`."""
        if self._state != "open":
            raise DatabaseClosedError(f"the database pool is {self._state}; call `await db.open()` first")
        try:
            async with self._pool.connection() as conn:
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

    async def migrate(self, model_id: str, dimension: int) -> MigrationResult:
        """Apply pending migrations and bind the embedding model; concurrent callers serialise on a lock."""
        if self._state != "open":
            raise DatabaseClosedError(f"the database pool is {self._state}; call `await db.open()` first")
        # a dedicated connection: the pool's ones may predate the vector type registration
        async with await psycopg.AsyncConnection.connect(self._dsn, connect_timeout=30) as conn:
            result = await apply_migrations(conn, model_id, dimension)
        if result.applied or result.model_changed:
            # connections opened before the vector type existed must be re-configured
            await self._pool.drain()
        return result
