"""The schema migrations' advisory lock: one replica migrates at a time, and one that waits says for whom.

The lock is transaction-level (a crash or a cancel releases it). A replica that finds it taken asks pg_locks which
session holds it; the holder's application_name, which the migrating connection sets to `ccb-migrations@<host>`,
names its host (an older version's, or any other session's, names none).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

logger = logging.getLogger(__name__)

# arbitrary constant shared by every process of this app ("ccbmigr" in hex-ish)
MIGRATION_LOCK_KEY = 0x6363_626D_6967_72
# the migrating connection's application_name before its host
MIGRATING_APPLICATION = "ccb-migrations@"
# PostgreSQL keeps 63 bytes of an application_name (NAMEDATALEN - 1)
_APPLICATION_NAME_BYTES = 63
# the opening's step while another session holds the lock; GET /status and the routes' 503 show it
MIGRATION_WAIT = "waiting for the migration another replica runs"


def migrating_application_name() -> str:
    """This replica's application_name for its migrating connection: another replica waiting for it reads the host."""
    name = f"{MIGRATING_APPLICATION}{socket.gethostname()}"
    return name.encode("ascii", "replace")[:_APPLICATION_NAME_BYTES].decode("ascii")


async def migrating_connection(dsn: str) -> AsyncConnection[TupleRow]:
    """A connection of its own for the migrations (the pool's may predate the vector type's registration), named with
    this replica's host: a replica waiting for its lock says whose migration it waits for."""
    return await AsyncConnection.connect(
        dsn, connect_timeout=30, autocommit=True, application_name=migrating_application_name()
    )


@dataclass(frozen=True, slots=True)
class LockHolder:
    """The session that holds the migrations' lock."""

    pid: int
    # None when its application_name is not a migrating replica's (an older version, an administrator's session)
    host: str | None

    def waited_for(self) -> str:
        """`waiting for the migration another replica runs (PostgreSQL pid 4242 on host web-2)`."""
        on_host = f" on host {self.host}" if self.host else ""
        return f"{MIGRATION_WAIT} (PostgreSQL pid {self.pid}{on_host})"


async def take_migration_lock(
    conn: AsyncConnection[TupleRow], waiting: Callable[[str | None], None] = lambda _wait: None
) -> None:
    """Take the lock for the caller's transaction; while another session holds it, `waiting` and the log are told
    which one, and `waiting` is told None once the lock is this one's."""
    cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
    taken = await cur.fetchone()
    if taken is not None and taken[0]:
        return
    holder = await migration_lock_holder(conn)
    if holder is None:  # let go of since the try: no wait worth telling
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        return
    wait = holder.waited_for()
    logger.info("%s: the schema migrations run one replica at a time; going on once it commits", wait)
    waiting(wait)
    started = time.monotonic()
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
    logger.info("the schema migrations' lock was free after %.0f s of waiting", time.monotonic() - started)
    waiting(None)


async def migration_lock_holder(conn: AsyncConnection[TupleRow]) -> LockHolder | None:
    """The session holding the migrations' lock in this database; None when none does (any more)."""
    # a bigint advisory key is in pg_locks as its high and low 32 bits, objsubid 1
    cur = await conn.execute(
        "SELECT l.pid, a.application_name FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.classid::bigint = %s AND l.objid::bigint = %s"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND l.pid IS NOT NULL",
        (MIGRATION_LOCK_KEY >> 32, MIGRATION_LOCK_KEY & 0xFFFF_FFFF),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    application = str(row[1] or "")
    host = application.removeprefix(MIGRATING_APPLICATION) if application.startswith(MIGRATING_APPLICATION) else None
    return LockHolder(int(row[0]), host or None)
