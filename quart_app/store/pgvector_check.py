"""The start-up check that the database has pgvector >= 0.8, creating the extension when it is missing.

Search filters by ACL in SQL; only pgvector 0.8's iterative index scans keep such a filter from starving the HNSW
result, so an older extension (common on managed PostgreSQL) is refused with what to run, instead of silently
answering with too few sources.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from quart_app.store.database_failure import loggable_message
from quart_app.store.errors import PgvectorMissingError, PgvectorTooOldError

logger = logging.getLogger(__name__)

# hnsw.iterative_scan arrived in pgvector 0.8.0
MIN_PGVECTOR = (0, 8, 0)
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int]:
    """'0.8.6' -> (0, 8, 6); a missing patch is 0; a version that is not dotted numbers raises ValueError."""
    match = _VERSION.match(text.strip())
    if match is None:
        raise ValueError(f"pgvector version {text!r} is not of the form MAJOR.MINOR[.PATCH]")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def _version_text(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


# what PgvectorState holds, in its field order (the app's start-up and `doctor` both ask this)
PGVECTOR_STATE_SQL = (
    "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector'),"
    " (SELECT default_version FROM pg_available_extensions WHERE name = 'vector'),"
    " current_user, current_database(), (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
)


@dataclass(frozen=True, slots=True)
class PgvectorState:
    """What the database says about the vector extension (None = not installed / no package on the server)."""

    installed: str | None
    available: str | None
    user: str
    database: str
    superuser: bool = False


def too_old_message(state: PgvectorState) -> str | None:
    """Why the installed (or only installable) pgvector is too old and what to do; None when it is new enough."""
    need = _version_text(MIN_PGVECTOR)
    available_ok = state.available is not None and parse_version(state.available) >= MIN_PGVECTOR
    if state.installed is not None:
        if parse_version(state.installed) >= MIN_PGVECTOR:
            return None
        fix = (
            f"run `ALTER EXTENSION vector UPDATE;` in database {state.database!r} as its owner or a superuser"
            f" (the server has pgvector {state.available} installed)"
            if available_ok
            else f"install pgvector >= {need} on the PostgreSQL server (the server offers"
            f" {state.available or 'none'}), then run `ALTER EXTENSION vector UPDATE;` in database {state.database!r}"
        )
        return (
            f"database {state.database!r} has pgvector {state.installed}; ACL-filtered search needs pgvector >= {need}"
            f" (iterative index scans): {fix}"
        )
    if state.available is None:
        return (
            f"the PostgreSQL server of database {state.database!r} has no pgvector extension; install pgvector >="
            f" {need} on it (package postgresql-NN-pgvector, or the pgvector/pgvector image), then restart the app"
        )
    if not available_ok:
        return (
            f"the PostgreSQL server of database {state.database!r} offers pgvector {state.available}; ACL-filtered"
            f" search needs pgvector >= {need} (iterative index scans): install a newer pgvector on the server"
        )
    return None


async def _state(conn: AsyncConnection[TupleRow]) -> PgvectorState:
    cur = await conn.execute(PGVECTOR_STATE_SQL)
    row = await cur.fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    return PgvectorState(*row)


async def require_pgvector(conn: AsyncConnection[TupleRow]) -> str:
    """Create the vector extension if missing; raise PgvectorMissingError / PgvectorTooOldError with the fix.

    Returns the installed version. The caller's connection must be in autocommit mode (not in a transaction).
    """
    state = await _state(conn)
    if state.installed is None:
        absent = too_old_message(state)
        if absent is not None:
            raise PgvectorMissingError(absent)  # nothing (new enough) to create
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PgvectorMissingError(
                f"database {state.database!r} has no vector extension and user {state.user!r} may not create it"
                f" ({loggable_message(exc)}); run `CREATE EXTENSION vector;` in database {state.database!r} as a"
                " superuser (on managed PostgreSQL: the provider's admin role), then restart the app; the server offers"
                f" pgvector {state.available}"
            ) from exc
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject):
            pass  # another replica starting at the same moment created it first
        state = await _state(conn)
        logger.info("created the vector extension %s in database %s", state.installed, state.database)
    old = too_old_message(state)
    if old is not None:
        raise PgvectorTooOldError(old)
    assert state.installed is not None  # created above, or it raised
    return state.installed
