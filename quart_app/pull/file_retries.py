"""Files whose download failed all their in-process tries, tried again by us later while their row stays locked for us.

The PHP app serves a claimed row again only after its 24 h lock and cannot release it, so a passing storage error (a
500, a 403 from a proxy) used to delay a file by a day, silently. Such a file is now kept in the database (a restart
does not forget it) and tried again after `pull.retry_later_s` (10 min, 1 h, 6 h), once more shortly before the lock
ends, and acknowledged as failed only if that fails too (404 or 422 are acknowledged at once, as before). The files of
a batch the app stopped in are kept too, due at once: the next start takes them first instead of a day later.

A kill -9 or an OOM kill leaves no time for that: the batch is therefore written here as it is claimed, marked as the
batch in hand of this replica (its slot on the volume, the same after a restart under any hostname:
pull/replica_slot.py) and leased for `LEASE_S`; the mark is cleared when the batch is done. The restarted replica
takes its own batch first at once; a replica that does not come back leaves it to the others when the lease ends; the
lease is renewed while the batch is worked on, so a long batch is not taken by another replica meanwhile.

A later try is made only while the row is still ours: once the lock has (nearly) ended, Nextcloud may have served the
row again, to this loop or a replica, listing the readers of then, and the file is left to that claim. The reader list
stored at the claim is brought up to date first with the actions received since (pull/queued_readers.py): left to
Nextcloud, a file whose access changed meanwhile waited for the rest of its row's 24 h lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime

import psycopg

from quart_app.pull.queue_items import DocumentItem
from quart_app.pull.queued_readers import readers_since_poll
from quart_app.store import Database, StoreError
from quart_app.store.database_failure import loggable_message
from quart_app.store.file_retry_store import (
    FileToRetry,
    RetryPlan,
    end_batch,
    forget,
    plan_retries,
    release_batch,
    renew_batch,
    take_due,
    waiting,
)

log = logging.getLogger(__name__)

# the PHP app's lock of a claimed row (QueueMapper::LOCK_TIMEOUT): it serves the row again after this
PHP_LOCK_S = 24 * 3600.0
# the last try is this long before the lock ends, so it and its acknowledgement land while the row is ours
LAST_TRY_BEFORE_LOCK_END_S = 1800.0
# a kept file taken this close to the lock's end is left to Nextcloud (clocks of Nextcloud and PostgreSQL may differ)
LOCK_END_SKEW_S = 300.0
# a taken file is not taken again for this long (another replica, or a try cut short by a stop)
LEASE_S = 900.0
# why a file of a batch cut short by a stop is kept
STOPPED_IN_BATCH = "the app stopped during its batch"
# why a file of the batch in hand is there (left by a replica that died during it)
IN_BATCH = "in the batch of a replica (it died during the batch if this stays)"


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """A kept file taken for a later try: the item as claimed, tries made later so far, how long ago it was claimed."""

    item: DocumentItem
    tries: int
    claimed_s_ago: float


def next_delay(later_s: list[float], tries: int, claimed_s_ago: float) -> float | None:
    """Seconds until the next try of a file after `tries` later tries failed; None when no try is left before the
    row's lock ends (acknowledge it as failed)."""
    last_try_at = PHP_LOCK_S - LAST_TRY_BEFORE_LOCK_END_S
    if claimed_s_ago >= last_try_at:
        return None
    if tries < len(later_s) and claimed_s_ago + later_s[tries] < last_try_at:
        return later_s[tries]
    return last_try_at - claimed_s_ago


class FileRetries:
    """The documents loop's kept files, in the database shared by every replica."""

    def __init__(self, db: Database, later_s: list[float], owner: str) -> None:
        self._db = db
        self._later_s = later_s
        self._owner = owner

    async def release_own_batch(self) -> None:
        """At the start: the batch this replica had in hand when it died goes first, at once."""
        try:
            async with self._db.connection() as conn:
                if released := await release_batch(conn, self._owner):
                    log.info("documents queue: %d file(s) of the batch in hand when the app died go first", released)
        except (psycopg.Error, StoreError) as exc:
            log.warning(
                "documents queue: the batch in hand when the app died waits for its lease to end: %s",
                loggable_message(exc),
            )

    async def hold_batch(self, items: list[DocumentItem]) -> None:
        """Just claimed from Nextcloud: written as this replica's batch in hand, leased for `LEASE_S`."""
        plans = [RetryPlan(i.kind, i.row_id, dataclasses.asdict(i), 0.0, 0, LEASE_S, IN_BATCH) for i in items]
        async with self._db.connection() as conn:
            await plan_retries(conn, plans, in_batch_of=self._owner)

    async def keep_batch_leased(self) -> None:
        """Renew the lease of the batch in hand until cancelled (a batch may take longer than `LEASE_S`)."""
        while True:
            await asyncio.sleep(LEASE_S / 3)
            try:
                async with self._db.connection() as conn:
                    await renew_batch(conn, self._owner, LEASE_S)
            except (psycopg.Error, StoreError) as exc:
                log.warning(
                    "documents queue: the lease of the batch in hand could not be renewed: %s", loggable_message(exc)
                )

    async def end_batch(self) -> None:
        """The batch is done: what is left of it (busy sources, a database away) is tried when its lease ends."""
        async with self._db.connection() as conn:
            await end_batch(conn, self._owner)

    async def take_due(self, limit: int) -> list[Retry]:
        """Kept files due for a try whose row is still ours, with their readers of now, as this replica's batch in
        hand; the others are forgotten."""
        async with self._db.connection() as conn:
            due = await take_due(conn, limit, LEASE_S, self._owner)
            ours: list[FileToRetry] = []
            for kept in due:
                if kept.claimed_s_ago < PHP_LOCK_S - LOCK_END_SKEW_S:
                    ours.append(kept)
                    continue
                log.info("documents queue: %s: its row's lock has ended; left to Nextcloud", kept.item["source_id"])
                await forget(conn, kept.kind, [kept.row_id])
        ready: list[Retry] = []
        for kept in ours:
            [item] = await readers_since_poll(self._db, [_item(kept)], kept.claimed_s_ago)
            ready.append(Retry(item, kept.tries, kept.claimed_s_ago))
        return ready

    async def keep(self, plans: list[RetryPlan]) -> None:
        async with self._db.connection() as conn:
            await plan_retries(conn, plans)

    def plan(self, item: DocumentItem, tries: int, claimed_s_ago: float, error: str) -> RetryPlan | None:
        """The next try of a file after `tries` later tries failed; None when none is left before its lock ends."""
        delay = next_delay(self._later_s, tries, claimed_s_ago)
        if delay is None:
            return None
        fields = dataclasses.asdict(item)
        return RetryPlan(item.kind, item.row_id, fields, claimed_s_ago, tries, delay, error)

    def plan_restart(self, item: DocumentItem, tries: int, claimed_s_ago: float) -> RetryPlan:
        """A file of a batch the app stopped in: due at once, so the next start (or a replica) takes it first; the
        stop does not count as a try."""
        return RetryPlan(item.kind, item.row_id, dataclasses.asdict(item), claimed_s_ago, tries, 0.0, STOPPED_IN_BATCH)

    async def forget(self, done: dict[str, list[int]]) -> None:
        async with self._db.connection() as conn:
            for kind, row_ids in done.items():
                await forget(conn, kind, row_ids)


async def files_to_retry(db: Database) -> dict[str, object]:
    """For GET /status: how many files wait for a later try, and when the next one is due."""
    async with db.connection() as conn:
        count, next_at = await waiting(conn)
    return {"files": count, "next_try_at": None if next_at is None else _iso(next_at)}


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def _item(kept: FileToRetry) -> DocumentItem:
    return DocumentItem(**kept.item)
