"""The readers of content-provider items once the actions received for them are applied (PHP app 5.4+).

The PHP app stores a provider item's readers in its queue row when the provider submits it, serves that row unchanged
however long it waits, and sends every later change (a deny, a delete, a declared reader list) to the actions queue
only. Applied while the item waited, such an action found nothing stored and changed nothing, so the item then gave
back a reader (or a document) the provider had taken away. Files are not concerned: Nextcloud lists a file's readers
when it serves the row.

The actions received (pull_actions keeps them two days) are applied to the item's list in their order. The two queues
share no clock, so an action may also predate the submission: a removal then wins anyway (a reader may miss the item
until the provider grants it again, never the other way round), and an allow restores only a reader the item lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from quart_app.pull.queue_items import DocumentItem
from quart_app.services.source_order import bare_provider_key
from quart_app.store import Database
from quart_app.store.pull_action_store import ReceivedAction, actions_naming


async def current_readers(db: Database, items: Sequence[DocumentItem]) -> list[DocumentItem]:
    """The items with the readers the actions received for them leave (none when they delete the item)."""
    if not items:
        return []
    providers = {key for item in items for key in (item.provider, _bare(item.provider))}
    async with db.connection() as conn:
        actions = await actions_naming(
            conn,
            sorted({item.source_id for item in items}),
            sorted(providers),
            sorted({user for item in items for user in item.user_ids}),
        )
    return [dataclasses.replace(item, user_ids=readers_after(item, actions)) for item in items]


def readers_after(item: DocumentItem, actions: Sequence[ReceivedAction]) -> list[str]:
    """The item's readers after `actions`, in the order received; those naming other sources change nothing."""
    listed = list(dict.fromkeys(item.user_ids))
    readers = set(listed)
    for action in actions:
        payload = action.payload
        if (action.type == "delete_source_ids" and item.source_id in payload["sourceIds"]) or (
            action.type == "delete_provider_id" and payload["providerId"] in (item.provider, _bare(item.provider))
        ):
            readers = set()
        elif action.type == "delete_user_id":
            readers.discard(payload["userId"])
        elif (action.type == "update_access_source_id" and payload["sourceId"] == item.source_id) or (
            action.type == "update_access_provider_id" and payload["providerId"] == item.provider
        ):
            named = set(payload["userIds"])
            readers = readers | (named & set(listed)) if payload["op"] == "allow" else readers - named
        elif action.type == "update_access_decl_source_id" and payload["sourceId"] == item.source_id:
            readers = set(payload["userIds"]) & set(listed)
    return [user for user in listed if user in readers]


def _bare(provider: str) -> str:
    """The provider part of `app__provider`, which delete_provider_id names alone from a PHP app before 5.5."""
    return bare_provider_key(provider)[1]
