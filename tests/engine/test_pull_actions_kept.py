"""Which applied pull actions are forgotten (two days after their confirmed acknowledgement): not those that may
concern a content-provider row whose own DELETE Nextcloud never confirmed, since it may serve that row again with the
readers of its submission; once that DELETE is answered, they go as the others do. Nor those that may concern a
provider row not served yet (a backlog): they go once a poll more than a day after their receipt found the provider
queue drained."""

from __future__ import annotations

from typing import Any

from quart_app.store import Database
from quart_app.store.provider_row_store import (
    UnconfirmedProviderRow,
    forget_confirmed,
    note_drained,
    record_unconfirmed,
)
from quart_app.store.pull_action_store import ReceivedAction, forget_done, receive_actions

MAIL = "mail__mail: 9"
ROW = UnconfirmedProviderRow(301, MAIL, ("mail__mail", "mail"), ("alice", "bob"))
# (payload type, payload) that may concern the row, then one that cannot
CONCERNING: list[tuple[str, dict[str, Any]]] = [
    ("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": MAIL}),
    ("delete_source_ids", {"sourceIds": ["mail__mail: 8", MAIL]}),
    ("update_access_provider_id", {"op": "deny", "userIds": ["bob"], "providerId": "mail__mail"}),
    ("delete_provider_id", {"providerId": "mail"}),
    ("delete_user_id", {"userId": "bob"}),
]
UNRELATED = ("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": "mail__mail: 10"})


async def _remaining(db: Database) -> list[int]:
    async with db.connection() as conn:
        return [
            int(r[0]) for r in await (await conn.execute("SELECT row_id FROM pull_actions ORDER BY seq")).fetchall()
        ]


async def test_actions_that_may_concern_an_unconfirmed_provider_row_are_kept_until_it_is_confirmed(
    db: Database,
) -> None:
    actions = [ReceivedAction(i, kind, payload) for i, (kind, payload) in enumerate([*CONCERNING, UNRELATED], 1)]
    async with db.connection() as conn:
        await receive_actions(conn, actions)
        await conn.execute(
            "UPDATE pull_actions SET received_at = now() - interval '3 days', done_at = now() - interval '3 days',"
            " acked_at = now() - interval '3 days'"
        )
        await note_drained(conn, 0)
        await record_unconfirmed(conn, [ROW])
        assert await forget_done(conn) == 1
    assert await _remaining(db) == [1, 2, 3, 4, 5]
    async with db.connection() as conn:
        await forget_confirmed(conn, [ROW.row_id])
        assert await forget_done(conn) == 5
    assert await _remaining(db) == []


FILE_ONLY: list[tuple[str, dict[str, Any]]] = [
    ("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": "files__default: 5"}),
    ("delete_source_ids", {"sourceIds": ["files__default: 5", "files__default: 6"]}),
    ("update_access_decl_source_id", {"userIds": ["alice"], "sourceId": "files__default: 7"}),
]


async def test_actions_that_may_concern_a_provider_row_not_served_yet_are_kept_until_the_queue_drained_a_day_later(
    db: Database,
) -> None:
    """Received and acknowledged three days ago: those naming only files go; those naming a user, a provider or a
    source that is not a file stay until a drained poll more than a day after their receipt."""
    mixed = ("delete_source_ids", {"sourceIds": ["files__default: 5", MAIL]})
    kinds = [*FILE_ONLY, *CONCERNING, UNRELATED, mixed]
    async with db.connection() as conn:
        await receive_actions(conn, [ReceivedAction(i, kind, payload) for i, (kind, payload) in enumerate(kinds, 1)])
        await conn.execute(
            "UPDATE pull_actions SET received_at = now() - interval '3 days', done_at = now() - interval '3 days',"
            " acked_at = now() - interval '3 days'"
        )
        assert await forget_done(conn) == len(FILE_ONLY)
        assert await _remaining(db) == list(range(len(FILE_ONLY) + 1, len(kinds) + 1))
        # drained two days ago: less than a day after their receipt, a row left locked then may come back
        await note_drained(conn, 2 * 86_400)
        assert await forget_done(conn) == 0
        await note_drained(conn, 0)
        assert await forget_done(conn) == len(kinds) - len(FILE_ONLY)
    assert await _remaining(db) == []
