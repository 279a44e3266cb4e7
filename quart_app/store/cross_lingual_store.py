"""SQL for the cross-lingual leg's vectors (migrations 0008, 0009, 0011): binding the model, the backfill's reads and
writes, the chunks the model refused, whether a question has asked for them, and whose chunks come first."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from psycopg import sql

from quart_app.chunking.chunker import embedding_text
from quart_app.store.claim_store import LOCK_CLASS_BASE
from quart_app.store.database import Connection
from quart_app.store.lexical_query import own_chunks
from quart_app.store.migration_lock import migrating_application_name, take_migration_lock
from quart_app.store.migrator import retype_vectors
from quart_app.store.search_filters import vector_literal

logger = logging.getLogger(__name__)

# advisory lock class of a chunk a backfill is embedding (beside claim_store's classes); the chunk id is the key
EMBEDDING_LOCK_CLASS = LOCK_CLASS_BASE + 0x10
# a chunk `c` without a cross-lingual vector (the backfill's pass in id order reads it, refused or not)
_WITHOUT_VECTOR = sql.SQL("NOT EXISTS (SELECT 1 FROM cross_lingual_vectors x WHERE x.chunk_id = c.id)")
# a chunk `c` still waiting for its vector: without one, and not refused by the model on its own
_WAITING = sql.SQL(
    "{without_vector} AND NOT EXISTS (SELECT 1 FROM cross_lingual_refused r WHERE r.chunk_id = c.id)"
).format(without_vector=_WITHOUT_VECTOR)


@dataclass(frozen=True, slots=True)
class PendingChunk:
    """A chunk without a cross-lingual vector: its id and what is embedded (header and text, as for the main
    vectors)."""

    chunk_id: int
    text: str


@dataclass(frozen=True, slots=True)
class CrossLingualProgress:
    """How far the backfill is: chunks with a cross-lingual vector, all chunks, those the model refused, and whether
    a question asked."""

    vectors: int
    chunks: int
    refused: int
    wanted: bool


async def bind_model(
    conn: Connection, model_id: str, dimension: int, waiting: Callable[[str | None], None] = lambda _wait: None
) -> bool:
    """Type the vector column for `model_id` and build its HNSW index; a different model than the stored one empties
    the table (vectors of two models are never mixed). True when the model changed. Serialised with migrations:
    `waiting` is told whose lock it waits for, if any, then None once the lock is this one's."""
    async with conn.transaction():
        # named as a migrating connection for this transaction: a replica waiting for the lock names this host
        await conn.execute("SELECT set_config('application_name', %s, true)", (migrating_application_name(),))
        await take_migration_lock(conn, waiting)
        row = await (await conn.execute("SELECT model_id, dimension FROM cross_lingual_model")).fetchone()
        if row is not None and row[0] == model_id and row[1] == dimension:
            return False
        if row is not None:
            logger.warning(
                "cross-lingual model changed from %s (%d-d) to %s (%d-d): its vectors are computed again",
                row[0],
                row[1],
                model_id,
                dimension,
            )
        await conn.execute("DROP INDEX IF EXISTS cross_lingual_vectors_hnsw_idx")
        await conn.execute("TRUNCATE cross_lingual_vectors, cross_lingual_refused")
        await retype_vectors(conn, "cross_lingual_vectors", dimension)
        await conn.execute(
            "CREATE INDEX cross_lingual_vectors_hnsw_idx ON cross_lingual_vectors"
            " USING hnsw (embedding vector_cosine_ops)"
        )
        # wanted_at survives a model change: the questions that needed the leg are still asked
        await conn.execute(
            "INSERT INTO cross_lingual_model (singleton, model_id, dimension) VALUES (true, %s, %s)"
            " ON CONFLICT (singleton) DO UPDATE SET model_id = EXCLUDED.model_id, dimension = EXCLUDED.dimension,"
            " bound_at = now()",
            (model_id, dimension),
        )
    logger.info("cross-lingual vectors bound to model %s (%d-d)", model_id, dimension)
    return row is not None


async def mark_wanted(conn: Connection) -> bool:
    """Record that a question needed the leg; True the first time."""
    cur = await conn.execute("UPDATE cross_lingual_model SET wanted_at = now() WHERE wanted_at IS NULL")
    return cur.rowcount > 0


async def read_wanted(conn: Connection) -> bool:
    """Whether a question on any replica has needed the leg (read where the backfill waits: no counting)."""
    row = await (await conn.execute("SELECT wanted_at IS NOT NULL FROM cross_lingual_model")).fetchone()
    return row is not None and bool(row[0])


async def read_progress(conn: Connection) -> CrossLingualProgress:
    """Counted, not estimated: the status page reads it, not the query path."""
    row = await (
        await conn.execute(
            "SELECT (SELECT count(*) FROM cross_lingual_vectors), (SELECT count(*) FROM chunks),"
            " (SELECT count(*) FROM cross_lingual_refused),"
            " coalesce((SELECT wanted_at IS NOT NULL FROM cross_lingual_model), false)"
        )
    ).fetchone()
    assert row is not None
    return CrossLingualProgress(int(row[0]), int(row[1]), int(row[2]), bool(row[3]))


async def mark_waiting_user(conn: Connection, user_id: str) -> None:
    """`user_id` asked a question that needed the leg: the backfill fills in that user's chunks first."""
    await conn.execute(
        "INSERT INTO cross_lingual_waiting_users (user_id) VALUES (%s)"
        " ON CONFLICT (user_id) DO UPDATE SET asked_at = now()",
        (user_id,),
    )


async def waiting_users_chunks(conn: Connection, limit: int) -> list[PendingChunk]:
    """The first `limit` chunks still waiting for a vector that the waiting users may read, the latest asker's first;
    when there is none, the users none of whose chunks waits are forgotten."""
    waiting_user = sql.SQL("a.user_id = u.user_id")
    query = sql.SQL(
        "SELECT c.id, c.header, c.text FROM cross_lingual_waiting_users u CROSS JOIN LATERAL (SELECT c.id, c.header,"
        " c.text {own}) c WHERE {waiting} ORDER BY u.asked_at DESC, c.id LIMIT %(limit)s"
    ).format(own=own_chunks(waiting_user, "c.id, c.header, c.text"), waiting=_WAITING)
    cur = await conn.execute(query, {"limit": limit})
    pending = [PendingChunk(int(r[0]), embedding_text(r[1], r[2])) for r in await cur.fetchall()]
    if not pending:
        # checked per user in this statement: one who asked since the read above keeps the row while chunks wait;
        # OFFSET 0: a subplan per waiting user, ending at that user's first chunk still waiting, not an anti join
        # over every user's chunks (0.1 ms instead of 110 ms for a user of one chunk among 200,000)
        await conn.execute(
            sql.SQL(
                "DELETE FROM cross_lingual_waiting_users u WHERE NOT EXISTS (SELECT 1 {own} AND {waiting} OFFSET 0)"
            ).format(own=own_chunks(waiting_user, "c.id"), waiting=_WAITING)
        )
    return pending


# the ids of the chunks user %(user_id)s may read
_USER_OWN_CHUNK_IDS = own_chunks(sql.SQL("a.user_id = %(user_id)s"), "c.id")
# how many of them still wait for their cross-lingual vector, counted up to %(waiting_limit)s
_USER_CHUNKS_WAITING = sql.SQL("SELECT count(*) FROM (SELECT 1 {own} AND {waiting} LIMIT %(waiting_limit)s) w").format(
    own=_USER_OWN_CHUNK_IDS, waiting=_WAITING
)


async def user_chunks_waiting(conn: Connection, user_id: str, limit: int) -> int:
    """How many of the chunks `user_id` may read still wait for their cross-lingual vector (a chunk the model refused
    does not wait), counted up to `limit`."""
    row = await (await conn.execute(_USER_CHUNKS_WAITING, {"user_id": user_id, "waiting_limit": limit})).fetchone()
    assert row is not None
    return int(row[0])


async def user_coverage(conn: Connection, user_id: str, waiting_limit: int, chunks_limit: int) -> tuple[int, int]:
    """How many of the chunks `user_id` may read still wait for their cross-lingual vector (counted up to
    `waiting_limit`; a chunk the model refused does not wait), and how many there are (counted up to `chunks_limit`)."""
    query = sql.SQL("SELECT ({waiting}), (SELECT count(*) FROM (SELECT 1 {own} LIMIT %(chunks_limit)s) t)").format(
        waiting=_USER_CHUNKS_WAITING, own=_USER_OWN_CHUNK_IDS
    )
    params = {"user_id": user_id, "waiting_limit": waiting_limit, "chunks_limit": chunks_limit}
    row = await (await conn.execute(query, params)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def pending_chunks(conn: Connection, after_id: int, limit: int) -> list[PendingChunk]:
    """The first `limit` chunks past `after_id` (id order) without a cross-lingual vector, those the model refused
    included (an engine error taken for a refusal heals at the next pass)."""
    query = sql.SQL(
        "SELECT c.id, c.header, c.text FROM chunks c WHERE c.id > %s AND {without_vector} ORDER BY c.id LIMIT %s"
    ).format(without_vector=_WITHOUT_VECTOR)
    cur = await conn.execute(query, (after_id, limit))
    return [PendingChunk(int(r[0]), embedding_text(r[1], r[2])) for r in await cur.fetchall()]


async def main_embeddings_due(conn: Connection) -> bool:
    """Whether some chunk is due for its main embedding (queued and due, being embedded or not): the whole index's
    cross-lingual vectors wait behind it (through the queue's partial index: one row read at most)."""
    row = await (
        await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM chunks WHERE embed_state = 'queued' AND next_attempt_at <= now())"
        )
    ).fetchone()
    return row is not None and bool(row[0])


async def claim_chunks(conn: Connection, chunk_ids: Sequence[int], limit: int) -> list[int]:
    """Up to `limit` of `chunk_ids`, the first still without a vector that no other backfill is embedding, each locked
    for this replica until the caller's transaction ends (call it inside one, write their vectors, commit)."""
    candidates = list(chunk_ids)
    while candidates:
        # the function scan yields the ids in order and LIMIT stops it, so no id past the last one returned is
        # locked; a count subquery, because NOT EXISTS would become an anti join that locks every id first
        cur = await conn.execute(
            "SELECT t.id FROM unnest(%s::bigint[]) AS t(id)"
            " WHERE pg_try_advisory_xact_lock(%s, (t.id %% 2147483647)::int)"
            " AND (SELECT count(*) FROM cross_lingual_vectors x WHERE x.chunk_id = t.id) = 0 LIMIT %s",
            (candidates, EMBEDDING_LOCK_CLASS, limit),
        )
        claimed = [int(row[0]) for row in await cur.fetchall()]
        if not claimed:
            return []
        # a replica that committed a chunk's vector while that statement ran released its lock after the statement's
        # snapshot was taken: a new statement sees the vector
        cur = await conn.execute(
            "SELECT chunk_id FROM cross_lingual_vectors WHERE chunk_id = ANY(%s::bigint[])", (claimed,)
        )
        done = {int(row[0]) for row in await cur.fetchall()}
        fresh = [chunk_id for chunk_id in claimed if chunk_id not in done]
        if fresh:
            return fresh
        candidates = candidates[candidates.index(claimed[-1]) + 1 :]
    return []


async def mark_refused(conn: Connection, chunk_id: int) -> bool:
    """The model refused `chunk_id` on its own: it no longer counts as waiting (skipped when deleted meanwhile). True
    the first time."""
    cur = await conn.execute(
        "INSERT INTO cross_lingual_refused (chunk_id) SELECT id FROM chunks WHERE id = %s ON CONFLICT DO NOTHING",
        (chunk_id,),
    )
    return cur.rowcount > 0


async def write_vectors(conn: Connection, chunk_ids: Sequence[int], vectors: Sequence[Sequence[float]]) -> int:
    """Store the vectors of the chunks still there (one deleted meanwhile is skipped) and clear their refusals; the
    number written."""
    cur = await conn.execute(
        "WITH cleared AS (DELETE FROM cross_lingual_refused WHERE chunk_id = ANY(%s::bigint[]))"
        " INSERT INTO cross_lingual_vectors (chunk_id, embedding)"
        " SELECT v.id, v.embedding::vector FROM unnest(%s::bigint[], %s::text[]) AS v(id, embedding)"
        " WHERE EXISTS (SELECT 1 FROM chunks c WHERE c.id = v.id) ON CONFLICT (chunk_id) DO NOTHING",
        (list(chunk_ids), list(chunk_ids), [vector_literal(vector) for vector in vectors]),
    )
    return cur.rowcount
