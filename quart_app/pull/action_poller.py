"""The actions loop (PHP app 5.4+): deletes and access changes, applied in queue order through the services.

Each action is validated on its own (one bad action never freezes the queue, context_chat#258). A claimed batch is
stored in the database (pull_actions, migration 0012) and acknowledged at once, then applied from there in the order
received. Nextcloud serves a claimed row again only after 24 h: an action it still held (a lost acknowledgement, or
one left for later while its source was being indexed) used to come back after the actions queued behind it, and undo
them. An action that cannot be applied now (database down, its sources being indexed for longer than
ingest.access_wait_s) is tried again here until it is applied, and no later one overtakes it; one stored before a stop
is applied first at the next start; a row served again is recognised and not applied twice (only while Nextcloud may
still hold it: the same id and action served an hour after Nextcloud confirmed deleting the row is a new row under a
reused id, after a restore of its database or an emptied queue table). One the database refuses for good
(store.errors.is_permanent: a value it cannot hold) is dropped as invalid instead.

A row is named in every DELETE until Nextcloud answers one, also across restarts (the ids are read from the database,
not kept in memory; only right after a claim showing no new row can hold its id: queue_loop.py), and an applied action
is remembered until two days after that answer (longer if it names a content-provider row whose own DELETE is
unconfirmed, or may concern one Nextcloud has not served yet: pull/provider_acks.py). Kept two days from its first
receipt instead, a row whose acknowledgement was lost twice with a restart after each came back once its record was gone
(after two 24 h locks, or later if the app was down), and the old action was applied again over newer ones.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg

from appliance.config import AppConfig
from quart_app.background_loops import LoopHandle, backoff
from quart_app.nextcloud import NextcloudClient
from quart_app.pull.pull_gate import ACTIONS_ACK_PATH, ACTIONS_PATH, PullGate
from quart_app.pull.queue_items import RejectedItem, parse_actions
from quart_app.pull.queue_loop import QueueLoop, ServedRows, rejected_row_ids
from quart_app.services import access, deletion
from quart_app.services.errors import InvalidRequestError, SourceBusyError
from quart_app.services.source_order import SourceOrder
from quart_app.store import Connection, Database, StoreError
from quart_app.store.database_failure import loggable_message
from quart_app.store.errors import is_permanent
from quart_app.store.pull_action_store import (
    ReceivedAction,
    forget_done,
    mark_acknowledged,
    mark_done,
    receive_actions,
    try_lock_applier,
    unacknowledged_row_ids,
    unlock_applier,
    waiting_actions,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
# stored actions read per round of applying them
WAITING_BATCH = 64
# unconfirmed acknowledgements sent again with the next ones, at most (Nextcloud ignores ids it no longer has)
MAX_UNACKNOWLEDGED = 10_000
# a retried action is logged at its first failure and then every this many
LOG_EVERY_ATTEMPTS = 10
# applied actions acknowledged more than two days ago are removed at most this often
FORGET_EVERY_S = 600.0


class _LockMayBeLostError(Exception):
    """The database was away while stored actions were applied: the appliers' lock may have gone with it."""


class ActionPoller(QueueLoop[ReceivedAction]):
    """Run by BackgroundLoops as `actions`."""

    queue = "actions"

    def __init__(
        self, nextcloud: NextcloudClient, gate: PullGate, db: Database, order: SourceOrder, config: AppConfig
    ) -> None:
        super().__init__(nextcloud, gate, config.pull)
        self._db = db
        self._order = order
        self._batch_size = config.actions_batch_size
        # invalid rows whose DELETE was lost (not stored: served again, they are only rejected again)
        self._unacknowledged_rejected: list[int] = []
        # rows whose DELETE was lost may wait to be named again (also those of before a restart)
        self._unconfirmed_left = True
        self._forgotten_at = -FORGET_EVERY_S

    async def run(self, handle: LoopHandle) -> None:
        # actions stored before a stop are older than any claimed now: they go first
        if await self._gate.wait_open(handle) and await self._apply_waiting(handle):
            await super().run(handle)

    async def after_empty_claim(self, handle: LoopHandle) -> None:
        """Rows whose DELETE was lost (before a stop too) are named at once: left to the next batch, they stayed locked
        in Nextcloud (counted as running in its stats) until served again a day later when no action came."""
        if not self._unconfirmed_left:
            return
        read = functools.partial(unacknowledged_row_ids, limit=MAX_UNACKNOWLEDGED)
        unconfirmed = await self._with_store(handle, read)
        if unconfirmed is not None:
            await self._acknowledge([], unconfirmed, ServedRows(self._batch_size, 0, None), handle)

    async def claim(self) -> tuple[list[ReceivedAction], list[RejectedItem]]:
        return parse_actions(await self._nc.ocs("GET", ACTIONS_PATH, params={"n": self._batch_size}))

    async def process(self, items: list[ReceivedAction], rejected: list[RejectedItem], handle: LoopHandle) -> bool:
        received = await self._with_store(handle, functools.partial(_receive, items=items))
        if received is None:
            return False  # stopped: the batch stays claimed and comes back after 24 h
        stored, unacknowledged = received
        handle.status.count("received", len(stored))
        if replayed := len(items) - len(stored):
            # Nextcloud served rows again whose acknowledgement it never got: applied once already, or waiting here
            log.info("actions queue: %d action(s) served again were received before; not applied twice", replayed)
            handle.status.count("served_again", replayed)
        # a row served again is acknowledged again even after a confirmed DELETE: Nextcloud still had it
        stored_rows = list(dict.fromkeys([*(item.row_id for item in items), *unacknowledged]))
        served = ServedRows.of(self._batch_size, (item.row_id for item in items), rejected, "actions")
        await self._acknowledge(rejected_row_ids(rejected, "actions"), stored_rows, served, handle)
        return await self._apply_waiting(handle)

    async def _acknowledge(
        self, rejected_rows: list[int], stored_rows: list[int], served: ServedRows, handle: LoopHandle
    ) -> None:
        """DELETE them with the invalid rows whose DELETE was lost, those the claim that `served` shows no unclaimed row
        can hold (queue_loop.ServedRows); a confirmed DELETE of stored rows is recorded (their record is kept two days
        after it), the rows of an unconfirmed one or left out are named again later."""
        rejected_rows = [*self._unacknowledged_rejected, *rejected_rows]
        left = [row for row in [*rejected_rows, *stored_rows] if not served.may_name(row)]
        rejected_rows = [row for row in rejected_rows if served.may_name(row)]
        stored_rows = [row for row in stored_rows if served.may_name(row)]
        self._unacknowledged_rejected = [row for row in self._unacknowledged_rejected if not served.may_name(row)]
        row_ids = list(dict.fromkeys([*rejected_rows, *stored_rows]))
        if not await self.acknowledge(ACTIONS_ACK_PATH, {"actions": row_ids}, len(row_ids), handle):
            self._unacknowledged_rejected = [*self._unacknowledged_rejected, *rejected_rows][-MAX_UNACKNOWLEDGED:]
            self._unconfirmed_left = True
            return
        self._unconfirmed_left = bool(left)
        if stored_rows:
            # stopped first, they stay unconfirmed and are named in the next DELETE again
            await self._with_store(handle, functools.partial(mark_acknowledged, row_ids=stored_rows))

    async def _apply_waiting(self, handle: LoopHandle) -> bool:
        """Apply every stored action in the order received, one replica at a time; False when the app stopped first.

        Two replicas applying the same stored actions at once could each apply an allow after the other applied the
        deny behind it. A database outage may have ended the lock's session: the lock is taken again after one."""
        while not handle.stopping.is_set():
            try:
                async with self._db.connection() as lock_conn:
                    if await try_lock_applier(lock_conn):
                        try:
                            return await self._apply_all(handle)
                        finally:
                            await unlock_applier(lock_conn)
            except (psycopg.Error, StoreError, _LockMayBeLostError) as exc:
                log.warning(
                    "actions queue: applying stored actions stopped (%s); starting again", loggable_message(exc)
                )
                if await self._gate.wait_for_store(handle) is None:
                    return False
                await handle.sleep(self._pull.error_backoff_s)
                continue
            handle.status.set("waiting", "another replica applies the stored actions")
            await handle.sleep(self._pull.idle_poll_s)
        return False

    async def _apply_all(self, handle: LoopHandle) -> bool:
        """Under the appliers' lock; a database error ends it (the caller takes the lock again).

        Actions are marked done a read at a time, not one by one (a round trip each cost 18 % of the rate): those
        applied but not marked when the app stops or fails are applied again, in their order, which changes nothing."""
        while waiting := await self._in_transaction(lambda conn: waiting_actions(conn, WAITING_BATCH)):
            done: list[int] = []
            try:
                for stored in waiting:
                    if not await self._apply_until_done(stored.action, handle):
                        return False
                    done.append(stored.seq)
            finally:
                if done:
                    with contextlib.suppress(psycopg.Error, StoreError):  # applied again at the next read
                        await self._in_transaction(functools.partial(mark_done, seqs=done))
        if time.monotonic() - self._forgotten_at > FORGET_EVERY_S:
            self._forgotten_at = time.monotonic()
            await self._in_transaction(forget_done)
        return True

    async def _apply_until_done(self, action: ReceivedAction, handle: LoopHandle) -> bool:
        """Apply the action (or drop it as invalid); False when the app stopped first.

        A failure that may pass (source busy, a lock timeout) is tried again, backing off, for as long as it takes:
        an action left for later would let the ones after it overtake it. After a database outage the caller takes
        the appliers' lock again first."""
        attempt = 0
        while not handle.stopping.is_set():
            attempt += 1
            try:
                await self.apply(action)
                handle.status.count("applied")
            except InvalidRequestError as exc:
                log.warning("actions queue: %s row %d dropped: %s", action.type, action.row_id, exc)
                handle.status.count("invalid")
            except (psycopg.Error, StoreError, SourceBusyError) as exc:
                if not is_permanent(exc):
                    await self._wait_before_trying_again(action, exc, attempt, handle)
                    continue
                # tried again, it would fail again and hold back every later action
                log.warning(
                    "actions queue: %s row %d dropped: the database refuses it: %s",
                    action.type,
                    action.row_id,
                    loggable_message(exc),
                )
                handle.status.count("invalid")
            return True
        return False

    async def _wait_before_trying_again(
        self, action: ReceivedAction, exc: Exception, attempt: int, handle: LoopHandle
    ) -> None:
        """Back off after a failure that may pass, shown in the loop's status; returns at once on a stop. Raises
        _LockMayBeLostError after a database outage: the appliers' lock may have gone with its session."""
        pause = backoff(self._pull.fetch_backoff_s, self._pull.error_backoff_max_s, attempt)
        level = logging.WARNING if attempt % LOG_EVERY_ATTEMPTS == 1 else logging.DEBUG
        reason = loggable_message(exc)
        log.log(level, "actions queue: %s row %d failed (%s); trying again", action.type, action.row_id, reason)
        handle.status.count("retries")
        handle.status.set(
            "waiting", f"{action.type} row {action.row_id} failed ({reason}); trying again in {pause:g} s"
        )
        outage = await self._gate.wait_for_store(handle)
        if outage:
            raise _LockMayBeLostError("the database was away") from exc
        if outage is not None:
            await handle.sleep(pause)

    async def _in_transaction(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        async with self._db.connection() as conn, conn.transaction():
            return await work(conn)

    async def _with_store(self, handle: LoopHandle, work: Callable[[Connection], Awaitable[T]]) -> T | None:
        """`work` in one transaction, waiting out a database outage; None when the app stopped first."""
        while not handle.stopping.is_set():
            try:
                return await self._in_transaction(work)
            except (psycopg.Error, StoreError) as exc:
                log.warning("actions queue: the database failed (%s); trying again", loggable_message(exc))
                if await self._gate.wait_for_store(handle) is None:
                    return None
                await handle.sleep(self._pull.error_backoff_s)
        return None

    async def apply(self, action: ReceivedAction) -> None:
        """One action through the delete/access services."""
        payload, db, order = action.payload, self._db, self._order
        if action.type == "delete_source_ids":
            if payload["sourceIds"]:
                await deletion.delete_sources(db, order, payload["sourceIds"])
        elif action.type == "delete_provider_id":
            await deletion.delete_named_provider(db, order, payload["providerId"])
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


async def _receive(conn: Connection, items: list[ReceivedAction]) -> tuple[list[int], list[int]]:
    """Store the batch; the row ids stored, and those of every stored action whose acknowledgement is unconfirmed."""
    return await receive_actions(conn, items), await unacknowledged_row_ids(conn, MAX_UNACKNOWLEDGED)
