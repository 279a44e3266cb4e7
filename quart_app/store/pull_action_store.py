"""SQL for the pull actions received from Nextcloud (migrations 0012, 0017): the actions loop's inbox, and the record
of what was applied and acknowledged, so that a row Nextcloud serves again is not applied twice."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quart_app.store.database import Connection

# applied rows are kept this long after Nextcloud confirmed it dropped their row (one it still holds may come back at
# any time: after its 24 h lock, or whenever the app runs again); a claim answered before that DELETE may still arrive.
# Those naming a content-provider row whose own DELETE is unconfirmed, or that may concern one not served yet, are kept
# longer (forget_done)
KEEP_DONE = "2 days"
# a row served again this long after Nextcloud confirmed deleting it is a new row under a reused id (a restore of its
# database, a queue table emptied), not a claim answered before that DELETE (a 30 s request, stored within minutes)
REPLAY_AFTER_ACK = "1 hour"
# session advisory lock of the one replica applying stored actions at a time ("ccbact")
APPLIER_LOCK_KEY = 0x6363_6261_6374


@dataclass(frozen=True, slots=True)
class ReceivedAction:
    """One action as Nextcloud queued it: its queue row id, type and validated payload."""

    row_id: int
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WaitingAction:
    """A received action not applied yet; `seq` is the order it was received in."""

    seq: int
    action: ReceivedAction


async def receive_actions(conn: Connection, actions: Sequence[ReceivedAction]) -> list[int]:
    """Store the actions in their order, except those already received (the same row with the same action, as
    Nextcloud serves a row again while it holds it: its DELETE unconfirmed, or confirmed less than REPLAY_AFTER_ACK
    ago); the row ids of those stored."""
    if not actions:
        return []
    cur = await conn.execute(
        "INSERT INTO pull_actions (row_id, type, payload)"
        " SELECT r.row_id, r.type, r.payload::jsonb"
        " FROM unnest(%s::bigint[], %s::text[], %s::text[]) WITH ORDINALITY AS r(row_id, type, payload, n)"
        " WHERE NOT EXISTS (SELECT 1 FROM pull_actions p"
        "  WHERE p.row_id = r.row_id AND p.type = r.type AND p.payload = r.payload::jsonb"
        "  AND (p.acked_at IS NULL OR p.acked_at > now() - %s::interval))"
        " ORDER BY r.n RETURNING row_id",
        (
            [a.row_id for a in actions],
            [a.type for a in actions],
            [json.dumps(a.payload) for a in actions],
            REPLAY_AFTER_ACK,
        ),
    )
    return [int(row[0]) for row in await cur.fetchall()]


async def waiting_actions(conn: Connection, limit: int) -> list[WaitingAction]:
    """The oldest received actions not applied yet, in the order received."""
    cur = await conn.execute(
        "SELECT seq, row_id, type, payload FROM pull_actions WHERE done_at IS NULL ORDER BY seq LIMIT %s", (limit,)
    )
    return [
        WaitingAction(int(seq), ReceivedAction(int(row_id), str(kind), dict(payload)))
        for seq, row_id, kind, payload in await cur.fetchall()
    ]


async def actions_naming(
    conn: Connection,
    source_ids: Sequence[str],
    providers: Sequence[str],
    user_ids: Sequence[str],
    received_within_s: float | None = None,
) -> list[ReceivedAction]:
    """The received actions (applied or not, kept KEEP_DONE or longer: forget_done; only those of the last
    `received_within_s` if given) that name one of these sources, providers (full key or bare id) or users, in the order
    received."""
    cur = await conn.execute(
        "SELECT row_id, type, payload FROM pull_actions"
        " WHERE (%s::float8 IS NULL OR received_at >= now() - make_interval(secs => %s::float8))"
        " AND (payload->>'sourceId' = ANY(%s) OR payload->'sourceIds' ?| %s"
        " OR payload->>'providerId' = ANY(%s) OR payload->>'userId' = ANY(%s)) ORDER BY seq",
        (received_within_s, received_within_s, list(source_ids), list(source_ids), list(providers), list(user_ids)),
    )
    return [ReceivedAction(int(row_id), str(kind), dict(payload)) for row_id, kind, payload in await cur.fetchall()]


async def mark_done(conn: Connection, seqs: Sequence[int]) -> None:
    """Mark these actions applied (or dropped as invalid)."""
    await conn.execute("UPDATE pull_actions SET done_at = now() WHERE seq = ANY(%s)", (list(seqs),))


async def unacknowledged_row_ids(conn: Connection, limit: int) -> list[int]:
    """Queue row ids of received actions whose acknowledgement Nextcloud has not confirmed, the oldest first."""
    cur = await conn.execute("SELECT row_id FROM pull_actions WHERE acked_at IS NULL ORDER BY seq LIMIT %s", (limit,))
    return list(dict.fromkeys(int(row[0]) for row in await cur.fetchall()))


async def mark_acknowledged(conn: Connection, row_ids: Sequence[int]) -> None:
    """Nextcloud answered a DELETE naming these queue rows: it holds them no more."""
    await conn.execute("UPDATE pull_actions SET acked_at = now() WHERE row_id = ANY(%s)", (list(row_ids),))


# an action that may concern a content-provider row: one naming a user, a provider or a source that is not a file
_NAMES_PROVIDER_ROWS = (
    "(a.payload ? 'userId' OR coalesce(a.payload->>'providerId', 'files__default') <> 'files__default'"
    " OR left(coalesce(a.payload->>'sourceId', 'files__default:'), 15) <> 'files__default:'"
    " OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(a.payload->'sourceIds', '[]')) AS s(id)"
    "  WHERE left(s.id, 15) <> 'files__default:'))"
)
# applied, acknowledged KEEP_DONE ago, and, if it may concern a provider row, received more than PROVIDER_LOCK before
# the provider queue was last found drained (migration 0019): every row queued before it was served by then, one left
# locked served again (Nextcloud's 24 h lock, and an hour for the two clocks)
PROVIDER_LOCK = "25 hours"
# (the drained test first: in the steady state it holds, and the payload's names are not looked at)
_DUE = (
    "a.done_at IS NOT NULL AND a.acked_at < now() - %(keep)s::interval"
    " AND (a.received_at < (SELECT drained_at - %(lock)s::interval FROM pull_provider_queue_drained)"
    " IS TRUE OR NOT " + _NAMES_PROVIDER_ROWS + ")"
)
_FORGET_DUE = "DELETE FROM pull_actions a WHERE " + _DUE
# the unconfirmed rows' names are joined to the due actions once, hashed (a test per action and row took 0.7 s for
# 10,000 actions and 100 rows: bench/pull_actions_forget.py)
_FORGET_DUE_NOT_NAMING_UNCONFIRMED = (
    "WITH names(name) AS (SELECT source_id FROM pull_unconfirmed_provider_rows"
    "  UNION SELECT unnest(providers || user_ids) FROM pull_unconfirmed_provider_rows),"
    " kept AS MATERIALIZED (SELECT a.seq FROM pull_actions a CROSS JOIN LATERAL jsonb_array_elements_text("
    "  jsonb_build_array(a.payload->'sourceId', a.payload->'providerId', a.payload->'userId')"
    "  || coalesce(a.payload->'sourceIds', '[]')) AS named(name) JOIN names USING (name) WHERE " + _DUE + ")"
    " DELETE FROM pull_actions a WHERE " + _DUE + " AND NOT EXISTS (SELECT 1 FROM kept WHERE kept.seq = a.seq)"
)


async def forget_done(conn: Connection) -> int:
    """Remove applied actions whose row Nextcloud confirmed dropping more than KEEP_DONE ago, except those naming the
    source, provider or a reader of a provider row it may serve again (its DELETE unconfirmed, migration 0018: the row
    lists its readers of before them), and those that may concern a provider row it has not served yet (_DUE); how
    many."""
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM pull_unconfirmed_provider_rows)")
    row = await cur.fetchone()
    if not (row and row[0]):
        cur = await conn.execute(_FORGET_DUE, {"keep": KEEP_DONE, "lock": PROVIDER_LOCK})
        return cur.rowcount
    cur = await conn.execute(_FORGET_DUE_NOT_NAMING_UNCONFIRMED, {"keep": KEEP_DONE, "lock": PROVIDER_LOCK})
    return cur.rowcount


async def try_lock_applier(conn: Connection) -> bool:
    """Take the appliers' lock on this session without waiting; False while another replica applies."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (APPLIER_LOCK_KEY,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def unlock_applier(conn: Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock(%s)", (APPLIER_LOCK_KEY,))
