"""The actions loop (PHP app 5.4+): deletes and access changes, applied in queue order through the services.

Each action is validated on its own (one bad action never freezes the queue, context_chat#258); every action is
idempotent, so a replay after a lost acknowledgement changes nothing. An action that cannot be applied now (database
down, its sources being indexed for longer than ingest.access_wait_s) is retried here first; if it still fails, it
and every action after it stay in the queue, so they are applied later in their order.
"""

from __future__ import annotations

import logging

import psycopg

from appliance.config import AppConfig
from quart_app.background_loops import LoopHandle, backoff
from quart_app.nextcloud import NextcloudClient
from quart_app.pull.pull_gate import ACTIONS_ACK_PATH, ACTIONS_PATH, PullGate
from quart_app.pull.queue_items import FILES_PROVIDER, ActionItem, RejectedItem, parse_actions
from quart_app.pull.queue_loop import QueueLoop, rejected_row_ids
from quart_app.services import access, deletion
from quart_app.services.errors import InvalidRequestError, SourceBusyError
from quart_app.services.source_order import SourceOrder
from quart_app.source_fields import is_valid_provider_id
from quart_app.store import Database, StoreError

log = logging.getLogger(__name__)


class ActionPoller(QueueLoop[ActionItem]):
    """Run by BackgroundLoops as `actions`."""

    queue = "actions"

    def __init__(
        self, nextcloud: NextcloudClient, gate: PullGate, db: Database, order: SourceOrder, config: AppConfig
    ) -> None:
        super().__init__(nextcloud, gate, config.pull)
        self._db = db
        self._order = order
        self._batch_size = config.actions_batch_size

    async def claim(self) -> tuple[list[ActionItem], list[RejectedItem]]:
        return parse_actions(await self._nc.ocs("GET", ACTIONS_PATH, params={"n": self._batch_size}))

    async def process(self, items: list[ActionItem], rejected: list[RejectedItem], handle: LoopHandle) -> bool:
        done = rejected_row_ids(rejected, "actions")
        for position, action in enumerate(items):
            if not await self._apply_with_retry(action, handle):
                # a later action must not overtake it (a deny applied now, its earlier allow replayed later)
                handle.status.count("left_locked", len(items) - position)
                break
            done.append(action.row_id)
            handle.status.count("applied")
        # replaying them after the 24 h lock is harmless: every action is idempotent
        await self.acknowledge(ACTIONS_ACK_PATH, {"actions": done}, len(done), handle)
        return True

    async def _apply_with_retry(self, action: ActionItem, handle: LoopHandle) -> bool:
        """True when the action is done for good (applied, or impossible); False leaves it for a later claim.

        While the database is away the action waits for it without using up its tries."""
        attempt = 0
        while attempt < self._pull.fetch_attempts:
            try:
                await self.apply(action)
                return True
            except InvalidRequestError as exc:
                log.warning("actions queue: %s row %d dropped: %s", action.type, action.row_id, exc)
                handle.status.count("invalid")
                return True
            except (psycopg.Error, StoreError, SourceBusyError) as exc:
                log.warning("actions queue: %s row %d failed (%s); retrying", action.type, action.row_id, exc)
            outage = await self._gate.wait_for_store(handle)
            if outage is None:
                return False
            if outage:
                continue
            attempt += 1
            if attempt < self._pull.fetch_attempts:
                await handle.sleep(backoff(self._pull.fetch_backoff_s, self._pull.fetch_backoff_max_s, attempt))
        return False

    async def apply(self, action: ActionItem) -> None:
        """One action through the delete/access services."""
        payload, db, order = action.payload, self._db, self._order
        if action.type == "delete_source_ids":
            if payload["sourceIds"]:
                await deletion.delete_sources(db, order, payload["sourceIds"])
        elif action.type == "delete_provider_id":
            for provider in await self._provider_keys(payload["providerId"]):
                await deletion.delete_provider(db, order, provider)
        elif action.type == "delete_user_id":
            await deletion.delete_user(db, order, payload["userId"])
        elif action.type == "update_access_source_id":
            await access.update_access(db, order, payload["op"], payload["userIds"], payload["sourceId"])
        elif action.type == "update_access_provider_id":
            await access.update_access_provider(db, order, payload["op"], payload["userIds"], payload["providerId"])
        elif payload["userIds"]:
            await access.update_access_declarative(db, order, payload["userIds"], payload["sourceId"])
        else:
            # declared readers: nobody; the document goes, as when the last reader is denied
            await deletion.delete_sources(db, order, [payload["sourceId"]])

    async def _provider_keys(self, provider: str) -> list[str]:
        """A full key as is; a bare id (PHP < 5.5, context_chat#258) is the provider part of stored keys."""
        if is_valid_provider_id(provider):
            return [provider]
        stored = await deletion.count_documents_by_provider(self._db)
        # the files provider is not a content provider: an app disable can never mean it
        keys = [key for key in stored if key != FILES_PROVIDER and key.split("__", 1)[1] == provider]
        log.info("actions queue: bare provider id %r means %s", provider, keys or "no stored provider")
        return keys
