"""SQL for the queue files to try again later (migration 0014): downloads that failed all their in-process tries, and
the batch a replica has in hand (migration 0016), so that a kill -9 does not leave it locked in Nextcloud for 24 h."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from quart_app.store.database import Connection


@dataclass(frozen=True, slots=True)
class FileToRetry:
    """A kept file: its queue row, the item as claimed, tries made later so far, and how long ago it was claimed."""

    kind: str
    row_id: int
    item: dict[str, Any]
    tries: int
    claimed_s_ago: float


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """Keep (or keep again) one file: try it `delay_s` from now; `claimed_s_ago` of the claim that locked its row."""

    kind: str
    row_id: int
    item: dict[str, Any]
    claimed_s_ago: float
    tries: int
    delay_s: float
    error: str


async def plan_retries(conn: Connection, plans: Sequence[RetryPlan], in_batch_of: str | None = None) -> None:
    """Store the plans; a row kept already is replaced (a new claim of it starts its tries afresh). With `in_batch_of`
    they are the batch that replica has in hand (their `delay_s` its lease), else files waiting for their try."""
    if not plans:
        return
    await conn.execute(
        "INSERT INTO pull_file_retries (kind, row_id, item, claimed_at, tries, next_try_at, last_error, in_batch_of)"
        " SELECT p.kind, p.row_id, p.item::jsonb, now() - make_interval(secs => p.ago), p.tries,"
        "  now() + make_interval(secs => p.delay), p.error, %s"
        " FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::float8[], %s::int[], %s::float8[], %s::text[])"
        "  AS p(kind, row_id, item, ago, tries, delay, error)"
        " ON CONFLICT (kind, row_id) DO UPDATE SET item = excluded.item, claimed_at = excluded.claimed_at,"
        "  tries = excluded.tries, next_try_at = excluded.next_try_at, last_error = excluded.last_error,"
        "  in_batch_of = excluded.in_batch_of",
        (
            in_batch_of,
            [p.kind for p in plans],
            [p.row_id for p in plans],
            [json.dumps(p.item) for p in plans],
            [p.claimed_s_ago for p in plans],
            [p.tries for p in plans],
            [p.delay_s for p in plans],
            [p.error for p in plans],
        ),
    )


async def take_due(conn: Connection, limit: int, lease_s: float, in_batch_of: str) -> list[FileToRetry]:
    """The files whose next try is due, oldest first, now in the batch of replica `in_batch_of`; each is put off by
    `lease_s` so another replica (or this one, if the try is cut short) does not take it meanwhile."""
    cur = await conn.execute(
        "UPDATE pull_file_retries r SET next_try_at = now() + make_interval(secs => %s), in_batch_of = %s"
        " FROM (SELECT kind, row_id FROM pull_file_retries WHERE next_try_at <= now()"
        "  ORDER BY next_try_at LIMIT %s FOR UPDATE SKIP LOCKED) due"
        " WHERE r.kind = due.kind AND r.row_id = due.row_id"
        " RETURNING r.kind, r.row_id, r.item, r.tries, extract(epoch FROM now() - r.claimed_at)",
        (lease_s, in_batch_of, limit),
    )
    return [
        FileToRetry(str(kind), int(row_id), dict(item), int(tries), float(ago))
        for kind, row_id, item, tries, ago in await cur.fetchall()
    ]


async def forget(conn: Connection, kind: str, row_ids: Sequence[int]) -> None:
    """Drop the kept files of these rows (indexed, acknowledged as failed, or left to Nextcloud)."""
    if row_ids:
        await conn.execute("DELETE FROM pull_file_retries WHERE kind = %s AND row_id = ANY(%s)", (kind, list(row_ids)))


async def end_batch(conn: Connection, in_batch_of: str) -> None:
    """The batch of `in_batch_of` is done: what is left of it waits for its try when its lease ends."""
    await conn.execute("UPDATE pull_file_retries SET in_batch_of = NULL WHERE in_batch_of = %s", (in_batch_of,))


async def renew_batch(conn: Connection, in_batch_of: str, lease_s: float) -> None:
    """Replica `in_batch_of` is still working on its batch in hand: no other takes it for `lease_s` more."""
    await conn.execute(
        "UPDATE pull_file_retries SET next_try_at = now() + make_interval(secs => %s) WHERE in_batch_of = %s",
        (lease_s, in_batch_of),
    )


async def release_batch(conn: Connection, in_batch_of: str) -> int:
    """At the start of replica `in_batch_of`: the batch it had in hand when it died is due at once; how many files."""
    cur = await conn.execute(
        "UPDATE pull_file_retries SET next_try_at = now(), in_batch_of = NULL WHERE in_batch_of = %s", (in_batch_of,)
    )
    return cur.rowcount


async def waiting(conn: Connection) -> tuple[int, datetime | None]:
    """How many files are kept for a later try, and when the next one is due (a replica's batch in hand is not)."""
    cur = await conn.execute("SELECT count(*), min(next_try_at) FROM pull_file_retries WHERE in_batch_of IS NULL")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), row[1]
