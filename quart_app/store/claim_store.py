"""SQL for the claims every app replica on one database shares (services/source_order.py orders with them).

A claim is a set of session advisory locks on one connection of a pool of its own (not the request pool: a claim
lasts as long as a parse). PostgreSQL ends them with the connection, so the claims of a replica that crashes, or
of a backend an administrator kills, are gone at once. An ingest only tries its locks; an access change waits in
PostgreSQL's lock queue, where it also turns away later ingests (a try that conflicts with a waiter fails), so a
stream of loads on other replicas cannot starve it. When each key last changed is kept in order_changes, stamped
from one sequence, so a load that took its stamp before a change on any replica is found stale.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from quart_app.store.database import CONNECT_TIMEOUT_S, RECONNECT_TIMEOUT_S, Connection, Database
from quart_app.store.database_failure import loggable_message
from quart_app.store.errors import DatabaseUnavailableError, StoreError

log = logging.getLogger(__name__)

# (kind, name) as services/source_order.py names a key: kind is "source", "provider" or "user"
ClaimKey = tuple[str, str]
KIND_NUMBERS = {"source": 1, "provider": 2, "user": 3}
# advisory lock class of a kind: this base + its number ("CC" in the high bytes, clear of the migration lock)
LOCK_CLASS_BASE = 0x4343_0000
# a user's lock is one of this many: a file shared with a group of 20,000 took a lock per reader, past PostgreSQL's
# lock table (max_locks_per_transaction x max_connections), and its batch failed on every try; two users sharing a
# lock only makes a change for one wait for a load of the other
USER_LOCK_BUCKETS = 512
# the second key of a (kind, name) lock, in SQL over columns kind and name
LOCK_ID = (
    f"CASE WHEN kind = {KIND_NUMBERS['user']} THEN hashtext(name) & {USER_LOCK_BUCKETS - 1} ELSE hashtext(name) END"
)
# connections held at once by claims of this process (each waiting change and each ingest in flight holds one)
CLAIM_CONNECTIONS = 16
# the claim connections' application_name (and pool name)
CLAIM_APPLICATION = "ccb-claims"
# change stamps older than this are dropped; a load whose stamp is older is treated as stale (it is retried)
CHANGES_KEPT_S = 3600.0
PRUNE_EVERY_S = 60.0


class ClaimBusyError(StoreError):
    """Another replica holds (or a change waits for) these keys."""

    def __init__(self, keys: list[ClaimKey]) -> None:
        super().__init__(f"held on another replica: {keys}")
        self.keys = keys


class ClaimWaitTimeoutError(StoreError):
    """The keys stayed held by ingests on other replicas for the whole wait."""


def _columns(keys: Iterable[ClaimKey]) -> tuple[list[int], list[str]]:
    unique = list(dict.fromkeys(keys))
    return [KIND_NUMBERS[kind] for kind, _ in unique], [name for _, name in unique]


class HeldClaim:
    """Locks held on one connection until the claim's block ends; stamps go through the same connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def changed_since(self, keys: Sequence[ClaimKey], stamp: int) -> set[ClaimKey]:
        """The keys whose last change came after `stamp` (checked while the locks are held)."""
        kinds, names = _columns(keys)
        cur = await self._conn.execute(
            "SELECT c.kind, c.name FROM unnest(%s::smallint[], %s::text[]) AS k(kind, name)"
            " JOIN order_changes c ON c.kind = k.kind AND c.name = k.name WHERE c.stamp > %s",
            (kinds, names, stamp),
        )
        by_number = {number: kind for kind, number in KIND_NUMBERS.items()}
        return {(by_number[kind], name) for kind, name in await cur.fetchall()}

    async def release(self, keys: Sequence[ClaimKey]) -> None:
        """Let go of exclusively held keys before the block ends (sources found stale)."""
        kinds, names = _columns(keys)
        await self._conn.execute(
            f"SELECT pg_advisory_unlock(%s + kind, {LOCK_ID}) FROM unnest(%s::int[], %s::text[]) AS k(kind, name)",
            (LOCK_CLASS_BASE, kinds, names),
        )

    async def record_change(self, keys: Sequence[ClaimKey]) -> None:
        """Stamp `keys` as changed now; committed before the locks go, so no load can claim them in between."""
        kinds, names = _columns(keys)
        await self._conn.execute(
            "INSERT INTO order_changes (kind, name, stamp) SELECT kind, name, nextval('order_clock')"
            " FROM unnest(%s::smallint[], %s::text[]) AS k(kind, name)"
            " ON CONFLICT (kind, name) DO UPDATE SET stamp = EXCLUDED.stamp, changed_at = now()",
            (kinds, names),
        )


async def _configure(conn: Connection) -> None:
    """Stamps do not wait for the disk: a crash of PostgreSQL ends every claim and load in flight anyway, and a
    stamp lost with its last few hundred milliseconds only matters to a load that survives that crash."""
    await conn.execute("SELECT set_config('synchronous_commit', 'off', false)")


class ClaimStore:
    """The claim connections of this process; `open()` before use, `close()` releases every claim.

    They go to the database of `db` (the request pool), which also tells when it is known to be away: a claim then
    waits no longer for a connection than a request does."""

    def __init__(self, db: Database, max_size: int = CLAIM_CONNECTIONS, min_size: int = 1) -> None:
        self._db = db
        self._pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            db.dsn,
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=_configure,
            reset=self._unlock_all,
            check=AsyncConnectionPool.check_connection,
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            # named in pg_stat_activity: an administrator tells claim connections from request ones
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S, "application_name": CLAIM_APPLICATION},
            name=CLAIM_APPLICATION,
        )
        self._pruned_at = 0.0
        # id() of the connections that took locks since they left the pool (only those need the reset's query)
        self._locking: set[int] = set()

    async def open(self, timeout_s: float = 30.0) -> None:
        try:
            await self._pool.open(wait=True, timeout=timeout_s)
        except PoolTimeout as exc:
            await self._pool.close()
            raise DatabaseUnavailableError(
                f"PostgreSQL did not accept the claim connections within {timeout_s:g} s"
            ) from exc

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _connection(self, wait_s: float) -> AsyncIterator[Connection]:
        conn = await self._db.take(self._pool, wait_s, "claim connections")
        try:
            async with conn:
                yield conn
        except psycopg.OperationalError as exc:
            if not conn.closed:
                raise  # a deadlock, a cancelled statement…: the database itself is fine
            raise DatabaseUnavailableError(
                f"the connection to PostgreSQL broke during the request ({loggable_message(exc)}); retry it"
            ) from exc
        finally:
            await self._pool.putconn(conn)

    async def _unlock_all(self, conn: Connection) -> None:
        """The pool's reset (run later, by a pool worker): for a claim that could not let go itself."""
        if id(conn) in self._locking:
            self._locking.discard(id(conn))
            # a connection this fails on is closed by the pool, and its locks go with it
            await conn.execute("SELECT pg_advisory_unlock_all()")

    @asynccontextmanager
    async def _locking_connection(self, wait_s: float) -> AsyncIterator[Connection]:
        """A claim connection whose locks all go when the block ends, before the claim's caller goes on."""
        async with self._connection(wait_s) as conn:
            self._locking.add(id(conn))
            try:
                yield conn
            finally:
                try:
                    await conn.execute("SELECT pg_advisory_unlock_all()")
                    self._locking.discard(id(conn))
                except psycopg.Error as exc:
                    # a dead connection took its locks with it; on a live one the pool's reset tries again
                    log.warning("claim connection: unlocking failed (%s)", type(exc).__name__)

    async def stamp(self) -> int:
        """A value of the shared clock: every change stamped after this compares greater."""
        async with self._connection(RECONNECT_TIMEOUT_S) as conn:
            cur = await conn.execute("SELECT nextval('order_clock')")
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    @asynccontextmanager
    async def try_hold(
        self, exclusive: Sequence[ClaimKey], shared: Sequence[ClaimKey], wait_s: float
    ) -> AsyncIterator[HeldClaim]:
        """Take every key at once without waiting, or raise ClaimBusyError holding none."""
        async with self._locking_connection(wait_s) as conn:
            kinds, names = _columns([*exclusive, *shared])
            modes = [key in set(exclusive) for key in dict.fromkeys([*exclusive, *shared])]
            # every row is tried (no short cut): the ones taken are let go below when any failed
            cur = await conn.execute(
                f"SELECT kind, name, CASE WHEN ex THEN pg_try_advisory_lock(%s + kind, {LOCK_ID})"
                f" ELSE pg_try_advisory_lock_shared(%s + kind, {LOCK_ID}) END"
                " FROM unnest(%s::int[], %s::text[], %s::bool[]) AS k(kind, name, ex)",
                (LOCK_CLASS_BASE, LOCK_CLASS_BASE, kinds, names, modes),
            )
            by_number = {number: kind for kind, number in KIND_NUMBERS.items()}
            busy = [(by_number[kind], name) for kind, name, taken in await cur.fetchall() if not taken]
            if busy:
                raise ClaimBusyError(busy)  # the ones taken go as the block ends
            await self._prune(conn)
            yield HeldClaim(conn)

    @asynccontextmanager
    async def wait_hold(self, keys: Sequence[ClaimKey], wait_s: float) -> AsyncIterator[HeldClaim]:
        """Take `keys` exclusively, waiting up to `wait_s` in PostgreSQL's queue; ClaimWaitTimeoutError after that."""
        started = time.monotonic()
        async with self._locking_connection(wait_s) as conn:
            kinds, names = _columns(keys)
            left_ms = max(1, round((wait_s - (time.monotonic() - started)) * 1000))
            await conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{left_ms}ms",))
            try:
                # one order for every replica's changes (sorted in a subquery that runs first): no deadlock
                await conn.execute(
                    f"SELECT pg_advisory_lock(%s + kind, h) FROM (SELECT DISTINCT kind, {LOCK_ID} AS h"
                    " FROM unnest(%s::int[], %s::text[]) AS k(kind, name) ORDER BY 1, 2 OFFSET 0) AS ordered",
                    (LOCK_CLASS_BASE, kinds, names),
                )
            except (psycopg.errors.QueryCanceled, psycopg.errors.DeadlockDetected) as exc:
                raise ClaimWaitTimeoutError(f"waited {wait_s:g} s for ingests on other replicas") from exc
            finally:
                await conn.execute("SELECT set_config('statement_timeout', '0', false)")
            yield HeldClaim(conn)

    async def _prune(self, conn: Connection) -> None:
        """Drop old change stamps, at most once a minute per process."""
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = time.monotonic()
        await conn.execute(
            "DELETE FROM order_changes WHERE changed_at < now() - make_interval(secs => %s)", (CHANGES_KEPT_S,)
        )
