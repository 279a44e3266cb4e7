"""SQL for the content-provider rows whose acknowledgement Nextcloud never confirmed (migration 0018): named in every
documents DELETE until one is answered; the applied actions that may concern them are kept until then
(pull_action_store.forget_done). And when the provider queue was last found drained (migration 0019): the applied
actions that may concern a provider row are kept until then too."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from quart_app.store.database import Connection


@dataclass(frozen=True, slots=True)
class UnconfirmedProviderRow:
    """A provider row as Nextcloud may serve it again: what an action names to concern it."""

    row_id: int
    source_id: str
    # the full provider key, and the bare id a delete_provider_id from a PHP app before 5.5 names
    providers: tuple[str, ...]
    user_ids: tuple[str, ...]


async def record_unconfirmed(conn: Connection, rows: Sequence[UnconfirmedProviderRow]) -> None:
    """Note rows whose DELETE was lost; one noted already stays as it is (Nextcloud serves a row unchanged)."""
    if not rows:
        return
    await conn.execute(
        "INSERT INTO pull_unconfirmed_provider_rows (row_id, source_id, providers, user_ids)"
        " SELECT r.row_id, r.source_id, ARRAY(SELECT jsonb_array_elements_text(r.providers::jsonb)),"
        " ARRAY(SELECT jsonb_array_elements_text(r.user_ids::jsonb))"
        " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS r(row_id, source_id, providers, user_ids)"
        " ON CONFLICT (row_id) DO NOTHING",
        (
            [row.row_id for row in rows],
            [row.source_id for row in rows],
            # as JSON: unnest cannot take arrays of arrays of different lengths
            [json.dumps(row.providers) for row in rows],
            [json.dumps(row.user_ids) for row in rows],
        ),
    )


async def unconfirmed_row_ids(conn: Connection, limit: int) -> list[int]:
    """Row ids noted as unconfirmed, the longest lost first."""
    cur = await conn.execute(
        "SELECT row_id FROM pull_unconfirmed_provider_rows ORDER BY lost_at, row_id LIMIT %s", (limit,)
    )
    return [int(row[0]) for row in await cur.fetchall()]


async def forget_confirmed(conn: Connection, row_ids: Sequence[int]) -> None:
    """Nextcloud answered a DELETE naming these rows: it holds them no more."""
    await conn.execute("DELETE FROM pull_unconfirmed_provider_rows WHERE row_id = ANY(%s)", (list(row_ids),))


async def note_drained(conn: Connection, polled_s_ago: float) -> None:
    """A documents poll `polled_s_ago` found the provider queue drained; a later one (another replica's) stays."""
    await conn.execute(
        "INSERT INTO pull_provider_queue_drained (drained_at) VALUES (now() - make_interval(secs => %s::float8))"
        " ON CONFLICT (singleton) DO UPDATE"
        " SET drained_at = GREATEST(pull_provider_queue_drained.drained_at, EXCLUDED.drained_at)",
        (polled_s_ago,),
    )
