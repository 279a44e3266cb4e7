"""What the documents and actions loops share: claim a batch, back off on errors and on an empty queue, hand the
batch over, and acknowledge with retries.

A row whose DELETE was lost is named again in a later one, but Nextcloud's DELETE takes ids only, and a restore of its
database (or a queue table emptied) makes it reuse ids for new rows: naming an old id then deleted a new row before
anybody claimed it. An old id is named again only right after a claim showing that no unclaimed row can hold it
(ServedRows).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from appliance.config import PullConfig
from quart_app.background_loops import LoopHandle, backoff
from quart_app.nextcloud import NextcloudAuthError, NextcloudClient, NextcloudError, NextcloudNotFoundError
from quart_app.pull.pull_gate import PullGate
from quart_app.pull.queue_items import InvalidItemError, RejectedItem, row_id_number
from quart_app.store import DatabaseUnavailableError

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class QueueLoop(ABC, Generic[Item]):
    """Subclasses name the queue, claim a batch and process it; `run` is the loop BackgroundLoops runs."""

    queue: str

    def __init__(self, nextcloud: NextcloudClient, gate: PullGate, config: PullConfig) -> None:
        self._nc = nextcloud
        self._gate = gate
        self._pull = config

    @abstractmethod
    async def claim(self) -> tuple[list[Item], list[RejectedItem]]:
        """GET the queue and validate each item; NextcloudError or InvalidItemError when the poll failed."""

    @abstractmethod
    async def process(self, items: list[Item], rejected: list[RejectedItem], handle: LoopHandle) -> bool:
        """Work through a claimed batch and acknowledge it; False when the app stopped in the middle."""

    async def after_empty_claim(self, handle: LoopHandle) -> None:
        """The queue served nothing: no unclaimed row is left to reuse an old id (a lost DELETE may be sent again)."""

    def batch_scope(self) -> AbstractAsyncContextManager[object]:
        """Held from before a poll until its batch is processed (the documents loop notes when it polled)."""
        return nullcontext()

    async def run(self, handle: LoopHandle) -> None:
        idle = errors = 0
        while await self._gate.wait_open(handle):
            status = handle.status
            poll_error: NextcloudError | InvalidItemError | None = None
            async with AsyncExitStack() as scope:
                try:
                    await scope.enter_async_context(self.batch_scope())
                except DatabaseUnavailableError:
                    # PostgreSQL went away after the gate looked (the documents loop notes its poll there): the gate
                    # waits it out; the database logged the outage
                    status.count("database_waits")
                    continue
                try:
                    items, rejected = await self.claim()
                except (NextcloudNotFoundError, NextcloudAuthError) as exc:
                    self._gate.mark_unavailable(exc)
                    continue
                except (NextcloudError, InvalidItemError) as exc:
                    poll_error = exc
                else:
                    errors = 0
                    if items or rejected:
                        idle = 0
                        if not await self._process(items, rejected, handle):
                            return
                        continue
            if poll_error is not None:
                errors += 1
                status.count("poll_errors")
                status.set("backing_off", f"polling the {self.queue} queue failed: {poll_error}")
                wait = backoff(self._pull.error_backoff_s, self._pull.error_backoff_max_s, errors)
                if isinstance(poll_error, NextcloudError):
                    wait = poll_error.wait_before_retry(wait)
                await handle.sleep(wait)
                continue
            idle += 1
            await self.after_empty_claim(handle)
            status.set("idle", f"the {self.queue} queue is empty")
            await handle.sleep(backoff(self._pull.idle_poll_s, self._pull.idle_poll_max_s, idle), self._gate.changed)

    async def _process(self, items: list[Item], rejected: list[RejectedItem], handle: LoopHandle) -> bool:
        handle.status.set("running", f"{len(items)} claimed {self.queue} item(s)")
        handle.status.count("claimed", len(items) + len(rejected))
        for bad in rejected:
            log.warning("%s queue: %s row %s is invalid and dropped: %s", self.queue, bad.kind, bad.row_id, bad.reason)
        handle.status.count("invalid", len(rejected))
        return await self.process(items, rejected, handle)

    async def acknowledge(self, path: str, body: dict[str, Any], count: int, handle: LoopHandle) -> bool:
        """DELETE what is done for good; False when the acknowledgement was lost (a replay after 24 h)."""
        if not count:
            return True
        if not await deliver(self._nc, self._gate, "DELETE", path, body, self._pull, handle, "ack_failures"):
            return False
        handle.status.count("acknowledged", count)
        return True


async def deliver(
    nextcloud: NextcloudClient,
    gate: PullGate,
    method: str,
    path: str,
    body: dict[str, Any],
    config: PullConfig,
    handle: LoopHandle,
    failure_counter: str,
    *,
    missing_is_gone: bool = False,
) -> bool:
    """Send a result or an acknowledgement, retried on transient errors and held while Nextcloud itself is away; False
    (logged, counted) when it is lost. With `missing_is_gone`, a 404 means what it was for was deleted meanwhile: True,
    logged at INFO."""
    attempt = 0
    while attempt < config.result_attempts:
        attempt += 1
        try:
            await nextcloud.ocs(method, path, json=body)
            return True
        except NextcloudError as exc:
            if missing_is_gone and isinstance(exc, NextcloudNotFoundError):
                log.info("%s %s: Nextcloud no longer has it (deleted meanwhile), nothing to deliver", method, path)
                return True
            outage = await gate.wait_for_nextcloud(handle) if exc.transient else False
            if outage:
                # Nextcloud was away (maintenance, a restart): not a try; a lost result leaves its task running
                attempt -= 1
                continue
            if not exc.transient or outage is None or attempt == config.result_attempts:
                log.error("%s %s could not be delivered: %s", method, path, exc)
                handle.status.count(failure_counter)
                return False
            wait = backoff(config.error_backoff_s, config.error_backoff_max_s, attempt)
            await handle.sleep(exc.wait_before_retry(wait))
    return False


def rejected_row_ids(rejected: list[RejectedItem], kind: str) -> list[int]:
    """Row ids of invalid items of one kind, to acknowledge (an id that is not a number cannot be)."""
    numbers = (row_id_number(bad.row_id) for bad in rejected if bad.kind == kind)
    return [number for number in numbers if number is not None]


@dataclass(frozen=True, slots=True)
class ServedRows:
    """What one claim served of a queue (of one kind): how many rows of the `asked` most, and the highest id."""

    asked: int
    count: int
    top: int | None

    @classmethod
    def of(cls, asked: int, row_ids: Iterable[int], rejected: list[RejectedItem], kind: str) -> ServedRows:
        numbers = [*row_ids, *rejected_row_ids(rejected, kind)]
        count = len(numbers) + sum(1 for bad in rejected if bad.kind == kind and row_id_number(bad.row_id) is None)
        return cls(asked, count, max(numbers, default=None))

    @property
    def drained(self) -> bool:
        """Fewer rows served than asked: the queue held no other unclaimed row."""
        return self.count < self.asked

    def may_name(self, row_id: int) -> bool:
        """Whether a DELETE sent right after this claim may name an old row id: not if an unclaimed row may hold it.
        Nextcloud serves the lowest unlocked ids first and gives a new row an id above every existing one, so none can
        when the claim served fewer rows than asked (none was left) or served a higher id."""
        return self.drained or (self.top is not None and row_id <= self.top)
