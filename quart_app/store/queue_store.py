"""SQL for the embedding queue: chunks without vectors, claimed under a lease so several workers can share it.

Writes to leased chunks skip rows another transaction holds instead of waiting for them: a delete (of the document,
or of an old version by a re-index) locks leased rows and cascades through them in its own order, so a worker holding
some rows while waiting for others deadlocked with it; a concurrent claim's scan may lock them for a moment too. The
worker writes a skipped row again once the other transaction lets go.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from quart_app.chunking.chunker import embedding_text
from quart_app.store.database import Connection

# the claimed chunks still leased under this token, minus those another transaction holds
_HELD = "SELECT id FROM chunks WHERE id = ANY(%(ids)s) AND lease_token = %(token)s FOR NO KEY UPDATE SKIP LOCKED"


@dataclass(frozen=True, slots=True)
class ClaimedChunk:
    """A chunk this worker holds the lease for."""

    id: int
    # what is embedded: the chunk's header and text (embedding_text)
    text: str
    text_hash: bytes
    token_count: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A batch of chunks leased to one worker; results are written only while the token still matches."""

    token: uuid.UUID
    chunks: list[ClaimedChunk]


async def claim_batch(conn: Connection, batch_tokens: int, lease_s: float, max_rows: int = 1024) -> Claim:
    """Lease due chunks in turn (by ordinal), up to `batch_tokens` tokens and `max_rows` rows (at least one chunk).

    Rows locked by another worker's claim are skipped, so `max_rows` should be close to what fits the budget:
    rows locked beyond it are invisible to other workers until this short transaction ends. The lease (not a
    long transaction) protects the batch while it is embedded, so a killed worker's chunks come back after
    `lease_s`.
    """
    token = uuid.uuid4()
    async with conn.transaction():
        # in turn, every document's first chunk, then every second one...: a big file does not hold back the files
        # indexed after it (a 5 MB log's 5,110 chunks came first for 15 minutes on a real Nextcloud 34)
        cur = await conn.execute(
            "SELECT id, token_count FROM chunks"
            " WHERE embed_state = 'queued' AND next_attempt_at <= now()"
            " AND (lease_until IS NULL OR lease_until < now())"
            " ORDER BY ordinal, id LIMIT %s FOR UPDATE SKIP LOCKED",
            (max_rows,),
        )
        chosen: list[int] = []
        used = 0
        for chunk_id, tokens in await cur.fetchall():
            if chosen and used + tokens > batch_tokens:
                break
            chosen.append(chunk_id)
            used += tokens
        if not chosen:
            return Claim(token, [])
        cur = await conn.execute(
            "UPDATE chunks SET lease_until = now() + make_interval(secs => %s), lease_token = %s"
            " WHERE id = ANY(%s) RETURNING id, header, text, text_hash, token_count",
            (lease_s, token, chosen),
        )
        rows = await cur.fetchall()
    chunks = sorted(
        (ClaimedChunk(r[0], embedding_text(r[1], r[2]), bytes(r[3]), r[4]) for r in rows), key=lambda c: c.id
    )
    return Claim(token, chunks)


async def still_leased(conn: Connection, claim: Claim) -> set[int]:
    """The claim's chunks still queued under its lease (not written, not deleted, not taken over): after complete(),
    those another transaction held."""
    cur = await conn.execute(
        "SELECT id FROM chunks WHERE id = ANY(%s) AND lease_token = %s AND embed_state = 'queued'",
        ([c.id for c in claim.chunks], claim.token),
    )
    return {row[0] for row in await cur.fetchall()}


async def renew(conn: Connection, claim: Claim, lease_s: float) -> int:
    """Extend the lease of the claimed chunks still held under this token; 0 means the whole claim was lost."""
    cur = await conn.execute(
        f"UPDATE chunks SET lease_until = now() + make_interval(secs => %(lease_s)s) WHERE id IN ({_HELD})",
        {"lease_s": lease_s, "ids": [c.id for c in claim.chunks], "token": claim.token},
    )
    return cur.rowcount


async def cached_vectors(conn: Connection, text_hashes: list[bytes]) -> dict[bytes, npt.NDArray[np.float32]]:
    """Vectors already computed for identical text."""
    cur = await conn.execute(
        "SELECT text_hash, embedding FROM embedding_cache WHERE text_hash = ANY(%s)", (text_hashes,)
    )
    return {bytes(row[0]): row[1].to_numpy() for row in await cur.fetchall()}


async def complete(
    conn: Connection,
    claim: Claim,
    vectors: dict[bytes, npt.NDArray[np.float32]],
    new_hashes: Sequence[bytes],
) -> int:
    """Write vectors for the claimed chunks (grouped by text hash) and cache the newly computed ones.

    Returns the chunks written; chunks deleted meanwhile, or whose lease was taken over, are not written.
    """
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(_HELD, {"ids": [c.id for c in claim.chunks], "token": claim.token})
        held = {row[0] for row in await cur.fetchall()}
        by_hash: dict[bytes, list[int]] = {}
        for chunk in claim.chunks:
            if chunk.id in held:
                by_hash.setdefault(chunk.text_hash, []).append(chunk.id)
        if not by_hash:
            return 0
        await cur.executemany(
            "UPDATE chunks SET embedding = %s, embed_state = 'embedded', embedded_at = now(), last_error = NULL,"
            " lease_until = NULL, lease_token = NULL WHERE id = ANY(%s) AND lease_token = %s",
            [(vectors[h], ids, claim.token) for h, ids in by_hash.items()],
        )
        written = cur.rowcount
        # in one order for every worker: two workers caching the same texts cannot wait for each other in a cycle
        cached = sorted(h for h in new_hashes if h in by_hash)
        if cached:
            await cur.executemany(
                "INSERT INTO embedding_cache (text_hash, embedding) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [(h, vectors[h]) for h in cached],
            )
    return written


async def fail(
    conn: Connection,
    claim: Claim,
    error: str,
    retryable: bool,
    max_attempts: int,
    backoff_base_s: float,
    backoff_max_s: float,
) -> int:
    """Count a failed attempt: back off exponentially, or end in 'failed' (fatal error or attempts used up)."""
    cur = await conn.execute(
        "UPDATE chunks SET attempts = attempts + 1, last_error = %(error)s, lease_until = NULL, lease_token = NULL,"
        " embed_state = CASE WHEN NOT %(retryable)s OR attempts + 1 >= %(max)s THEN 'failed' ELSE 'queued' END,"
        " next_attempt_at = now() + make_interval(secs => least(%(cap)s, %(base)s * power(2, attempts)))"
        f" WHERE id IN ({_HELD})",
        {
            # PostgreSQL text cannot hold NUL, and a service's error message may (refused, it stalled the queue)
            "error": error.replace("\x00", "")[:2000],
            "retryable": retryable,
            "max": max_attempts,
            "cap": backoff_max_s,
            "base": backoff_base_s,
            "ids": [c.id for c in claim.chunks],
            "token": claim.token,
        },
    )
    return cur.rowcount


async def release(conn: Connection, claim: Claim) -> None:
    """Give a claimed batch back untouched (worker shutting down)."""
    await conn.execute(
        f"UPDATE chunks SET lease_until = NULL, lease_token = NULL WHERE id IN ({_HELD})",
        {"ids": [c.id for c in claim.chunks], "token": claim.token},
    )


async def requeue_failed(conn: Connection, error_pattern: str) -> int:
    """Give the failed chunks whose last error matches `error_pattern` (a regular expression) fresh attempts."""
    cur = await conn.execute(
        "UPDATE chunks SET embed_state = 'queued', attempts = 0, next_attempt_at = now(), last_error = NULL"
        " WHERE embed_state = 'failed' AND last_error ~ %s",
        (error_pattern,),
    )
    return cur.rowcount


async def has_claimable(conn: Connection) -> bool:
    """True if some queued chunk is due and not leased (it may be row-locked by another worker's claim)."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM chunks WHERE embed_state = 'queued' AND next_attempt_at <= now()"
        " AND (lease_until IS NULL OR lease_until < now()))"
    )
    row = await cur.fetchone()
    return bool(row is not None and row[0])
