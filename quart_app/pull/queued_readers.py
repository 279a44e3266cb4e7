"""The readers of claimed documents once the actions received for them are applied (PHP app 5.4+).

A content-provider item lists the readers of when the provider submitted it: the PHP app serves that row unchanged
however long it waits and sends every later change (a deny, a delete, a declared reader list) to the actions queue
only. Applied while the item waited, such an action found nothing stored and changed nothing, so the item then gave
back a reader (or a document) the provider had taken away. The actions received are applied to the item's list in
their order: pull_actions keeps them until two days after Nextcloud confirmed their acknowledgement, and those naming
a provider row whose own DELETE was lost (its source, its provider or one of its readers) until Nextcloud confirms that
one too (pull/provider_acks.py), so the row served again days later still loses them. The two queues share no clock,
so an action may also predate the submission: a removal then wins anyway (a reader may miss the item until the
provider grants it again, never the other way round), and an allow restores only a reader the item lists. An item
first served more than two days after a removal (a backlog that long) loses it too: the actions that may concern a
provider row are kept until a poll more than a day after their receipt found the provider queue drained.

A file lists the readers of when Nextcloud served its row. One whose readers changed between that poll and the claim
(SourceOrder: stale) used to be left locked in Nextcloud's queue for 24 h; every change since the poll is an action
received since, so those applied to its list in their order give its readers of now, allows included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from quart_app.pull.queue_items import DocumentItem
from quart_app.services.source_order import bare_provider_key
from quart_app.store import Database
from quart_app.store.pull_action_store import ReceivedAction, actions_naming

# actions received this long before the poll are applied too: the wait since it is measured on the app's clock, the
# receipt on the database's, a moment apart
POLL_SLACK_S = 5.0


async def current_readers(db: Database, items: Sequence[DocumentItem]) -> list[DocumentItem]:
    """Provider items with the readers the actions received for them leave (none when they delete the item)."""
    actions = await _actions_for(db, items, None)
    return [dataclasses.replace(item, user_ids=readers_after(item, actions, listed_only=True)) for item in items]


async def readers_since_poll(db: Database, items: Sequence[DocumentItem], polled_s_ago: float) -> list[DocumentItem]:
    """Files with their readers of now: those of the poll `polled_s_ago` with the actions received since applied."""
    actions = await _actions_for(db, items, polled_s_ago + POLL_SLACK_S)
    return [dataclasses.replace(item, user_ids=readers_after(item, actions, listed_only=False)) for item in items]


async def _actions_for(
    db: Database, items: Sequence[DocumentItem], received_within_s: float | None
) -> list[ReceivedAction]:
    if not items:
        return []
    providers = {key for item in items for key in (item.provider, _bare(item.provider))}
    async with db.connection() as conn:
        return await actions_naming(
            conn,
            sorted({item.source_id for item in items}),
            sorted(providers),
            sorted({user for item in items for user in item.user_ids}),
            received_within_s,
        )


def readers_after(item: DocumentItem, actions: Sequence[ReceivedAction], *, listed_only: bool) -> list[str]:
    """The item's readers after `actions`, in the order received; those naming other sources change nothing. With
    `listed_only` an allow or a declared list adds no reader the item does not list."""
    listed = list(dict.fromkeys(item.user_ids))
    readers = set(listed)
    allowed: list[str] = []
    for action in actions:
        payload = action.payload
        if (action.type == "delete_source_ids" and item.source_id in payload["sourceIds"]) or (
            action.type == "delete_provider_id" and payload["providerId"] in _provider_names(item)
        ):
            readers = set()
        elif action.type == "delete_user_id":
            readers.discard(payload["userId"])
        elif (action.type == "update_access_source_id" and payload["sourceId"] == item.source_id) or (
            action.type == "update_access_provider_id" and payload["providerId"] == item.provider
        ):
            named = set(payload["userIds"])
            if payload["op"] == "allow":
                readers |= named & set(listed) if listed_only else named
                allowed += payload["userIds"]
            else:
                readers -= named
        elif action.type == "update_access_decl_source_id" and payload["sourceId"] == item.source_id:
            readers = set(payload["userIds"]) & set(listed) if listed_only else set(payload["userIds"])
            allowed += payload["userIds"]
    return [user for user in dict.fromkeys([*listed, *allowed]) if user in readers]


def _bare(provider: str) -> str:
    """The provider part of `app__provider`, which delete_provider_id names alone from a PHP app before 5.5."""
    return bare_provider_key(provider)[1]


def _provider_names(item: DocumentItem) -> tuple[str, ...]:
    """What a delete_provider_id naming the item's provider may say: a bare id never means files (an app disable)."""
    return (item.provider,) if item.kind == "files" else (item.provider, _bare(item.provider))
