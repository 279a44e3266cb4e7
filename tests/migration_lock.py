"""The schema migrations' lock, as tests hold and watch it: a replica applying them, an app waiting behind them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from quart_app.store.migration_lock import MIGRATION_LOCK_KEY


@dataclass(frozen=True)
class HeldMigrations:
    """The migrations' lock as a test holds it: its session's PostgreSQL pid, and how to release it early."""

    pid: int
    release: Callable[[], None]


@contextmanager
def migrations_held(dsn: str) -> Iterator[HeldMigrations]:
    """Hold the lock the app's migrations take, as a replica applying them does (one of an older version: its session
    names no host); released at the end, or earlier by calling what this yields."""
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))

        def release() -> None:
            holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))

        yield HeldMigrations(holder.info.backend_pid, release)


def waits_for_migrations(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
        ).fetchone()
    return row is not None and row[0] > 0


def migrations_applied(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if row is None or not row[0]:
            return 0
        counted = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    return 0 if counted is None else int(counted[0])
