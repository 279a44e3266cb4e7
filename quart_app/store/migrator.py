"""Numbered SQL migrations and the binding of the embedding model's dimension to the vector columns.

Everything runs in one transaction behind a transaction-level advisory lock (quart_app/store/migration_lock.py), so
two processes starting at the same time apply each migration exactly once and never see a half-migrated schema.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow

from quart_app.store.errors import MigrationError
from quart_app.store.migration_lock import take_migration_lock

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file from quart_app/store/migrations."""

    number: int
    name: str
    sql: str


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """What `apply_migrations` did."""

    applied: list[str]
    model_changed: bool
    previous_model: str | None


def load_migrations() -> list[Migration]:
    """The migration files in number order; a badly named file is an error, not silently skipped."""
    found: list[Migration] = []
    for entry in resources.files("quart_app.store.migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name!r} is misnamed; use NNNN_lowercase_name.sql")
        found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.number)
    numbers = [m.number for m in found]
    if len(set(numbers)) != len(numbers):
        raise MigrationError(f"two migration files share a number in {[m.name for m in found]}; renumber one")
    return found


async def apply_migrations(
    conn: AsyncConnection[TupleRow],
    model_id: str,
    dimension: int,
    reported_model: str | None = None,
    waiting: Callable[[str | None], None] = lambda _wait: None,
) -> MigrationResult:
    """Apply pending migrations and bind the model; the caller's connection must not be in a transaction.

    `reported_model` is the model id the embedding service's responses name now (None: unknown); one that differs
    from the recorded one is a model change even when the id and dimension are the same. `waiting` is told which
    replica's migration this one waits for, if any, then None once the lock is this one's."""
    if dimension <= 0:
        raise MigrationError(f"embedding dimension {dimension} for model {model_id!r} must be > 0")
    async with conn.transaction():
        await take_migration_lock(conn, waiting)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " number int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT number, name FROM schema_migrations ORDER BY number")
        recorded = await cur.fetchall()
        done = {row[0] for row in recorded}
        migrations = load_migrations()
        _refuse_a_newer_schema(recorded, migrations)
        applied: list[str] = []
        for migration in migrations:
            if migration.number in done:
                continue
            logger.info("applying schema migration %s", migration.name)
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (number, name) VALUES (%s, %s)", (migration.number, migration.name)
            )
            applied.append(migration.name)
        changed, previous = await _bind_model(conn, model_id, dimension, reported_model)
    return MigrationResult(applied, changed, previous)


def _refuse_a_newer_schema(recorded: list[TupleRow], migrations: list[Migration]) -> None:
    """A later version migrated this database (then a downgrade, or an old replica in a rolling upgrade): this code
    would read and write tables it does not know the shape of, and rebind the vector columns under the newer one."""
    newest = max(migration.number for migration in migrations)
    unknown = [str(row[1]) for row in recorded if row[0] > newest]
    if unknown:
        raise MigrationError(
            f"the database schema is newer than this version of the app: it holds the migration(s)"
            f" {', '.join(unknown)}, and this version knows migrations up to {newest:04d} only. A later version of"
            " the app migrated it; start that version again (every replica), or restore the database from the"
            " backup taken before the upgrade to run this one"
        )


@dataclass(frozen=True, slots=True)
class StoredModel:
    """The model the stored vectors come from (the embedding_model row)."""

    model_id: str
    dimension: int
    # the model id the embedding service's responses named for these vectors; None until one names it
    reported_model: str | None


async def stored_model(conn: AsyncConnection[TupleRow]) -> StoredModel | None:
    """The bound model; None before the first migration bound one."""
    cur = await conn.execute("SELECT model_id, dimension, reported_model FROM embedding_model")
    row = await cur.fetchone()
    return None if row is None else StoredModel(str(row[0]), int(row[1]), row[2])


async def record_reported_model(conn: AsyncConnection[TupleRow], model_id: str, reported_model: str) -> None:
    """Record the model the responses name for `model_id`'s vectors, unless one is recorded (or the model rebound)."""
    await conn.execute(
        "UPDATE embedding_model SET reported_model = %s WHERE model_id = %s AND reported_model IS NULL",
        (reported_model, model_id),
    )


async def _bind_model(
    conn: AsyncConnection[TupleRow], model_id: str, dimension: int, reported_model: str | None
) -> tuple[bool, str | None]:
    stored = await stored_model(conn)
    if stored is not None and stored.model_id == model_id and stored.dimension == dimension:
        if reported_model in (None, stored.reported_model):
            return False, model_id
        if stored.reported_model is None:
            # the first time the responses' model is known (an index bound before it was recorded): nothing to redo
            await record_reported_model(conn, model_id, reported_model)
            return False, model_id
    previous = None if stored is None else f"{stored.model_id} ({stored.dimension}-d{_named(stored.reported_model)})"
    if stored is not None:
        logger.warning(
            "embedding model changed from %s to %s (%d-d%s): every chunk is queued for re-embedding",
            previous,
            model_id,
            dimension,
            _named(reported_model),
        )
    await conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw_idx")
    # vectors of two models are never mixed: all are dropped and every chunk goes back to the queue
    await conn.execute(
        "UPDATE chunks SET embedding = NULL, embed_state = 'queued', attempts = 0, next_attempt_at = now(),"
        " lease_until = NULL, lease_token = NULL, last_error = NULL, embedded_at = NULL"
    )
    await conn.execute("TRUNCATE embedding_cache")
    await retype_vectors(conn, "chunks", dimension)
    await retype_vectors(conn, "embedding_cache", dimension)
    await conn.execute("CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops)")
    await conn.execute(
        "INSERT INTO embedding_model (singleton, model_id, dimension, reported_model) VALUES (true, %s, %s, %s)"
        " ON CONFLICT (singleton) DO UPDATE SET model_id = EXCLUDED.model_id, dimension = EXCLUDED.dimension,"
        " reported_model = EXCLUDED.reported_model, bound_at = now()",
        (model_id, dimension, reported_model),
    )
    logger.info("embedding columns bound to model %s (%d-d)", model_id, dimension)
    return stored is not None, previous


def _named(reported_model: str | None) -> str:
    return "" if reported_model is None else f", responses naming {reported_model!r}"


async def retype_vectors(conn: AsyncConnection[TupleRow], table: str, dimension: int) -> None:
    """Type `table`'s `embedding` column as vector(dimension); its old values are dropped (NULL), never converted."""
    vector_type = sql.SQL("vector({})").format(sql.Literal(dimension))
    await conn.execute(
        sql.SQL("ALTER TABLE {table} ALTER COLUMN embedding TYPE {t} USING NULL::{t}").format(
            table=sql.Identifier(table), t=vector_type
        )
    )
