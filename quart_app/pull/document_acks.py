"""Which queue rows a documents DELETE names (PHP app 5.4+).

Nextcloud's DELETE takes ids only, and reuses them for new rows after a restore of its database or an emptied queue
table: an id from an earlier claim is named only right after a claim showing that no unclaimed row can hold it
(queue_loop.ServedRows). That holds for the provider rows whose DELETE was lost (pull/provider_acks.py) and for the rows
of kept files done on a later try (pull/file_retries.py), which has no claim of its own: sent at once, their DELETE
deleted a new row queued under the old id before it was claimed. A file row waits here for the next claim or an empty
answer (in memory: forgotten on a restart, it comes back when its lock ends and is found unchanged); a provider row is
noted as unconfirmed. No claim serves a row we left locked (not done: busy, stale, kept for a later try), so none of
those ids is named for an old row until that row is done or its lock ends: the DELETE deleted it, never served again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from quart_app.pull.file_retries import PHP_LOCK_S
from quart_app.pull.provider_acks import UnconfirmedProviderRows
from quart_app.pull.queue_items import DocumentItem, RejectedItem
from quart_app.pull.queue_loop import ServedRows
from quart_app.store import Database

KINDS = ("files", "content_providers")
# file rows done on a later try kept to be named, at most (one not named comes back when its lock ends)
MAX_LATER_FILES = 10_000
# rows left locked kept, at most (the newest; one forgotten may be named again before its lock ends)
MAX_LEFT_LOCKED = 10_000


class DocumentAcks:
    """What the claim of the batch in hand served, and the rows waiting for a claim that lets a DELETE name them; a
    claim that found the provider queue drained is noted through it too (pull/provider_acks.py)."""

    def __init__(self, db: Database, batch_size: int) -> None:
        self._unconfirmed = UnconfirmedProviderRows(db)
        self._batch_size = batch_size
        # of the batch in hand, per kind; None for kept files taken for a later try (no claim)
        self._served: dict[str, ServedRows] | None = None
        self._later_files: list[int] = []
        # claimed rows not done, by kind and id, with when: locked, no claim serves them, yet one of them may hold a
        # reused id, so none is named until its lock ends (Nextcloud serves it again) or it is done
        self._left_locked: dict[tuple[str, int], float] = {}

    def claimed(self, items: list[DocumentItem], rejected: list[RejectedItem]) -> bool:
        """Note what a claim served; whether it found the provider queue drained (fewer provider rows than asked)."""
        self._served = {
            kind: ServedRows.of(self._batch_size, (i.row_id for i in items if i.kind == kind), rejected, kind)
            for kind in KINDS
        }
        return self._served["content_providers"].drained

    async def note_drained(self, polled_at: float) -> None:
        """A poll at `polled_at` (monotonic) found the provider queue drained, and its batch is done (empty or not)."""
        await self._unconfirmed.note_drained(polled_at)

    def kept_files_taken(self) -> None:
        self._served = None

    def queue_empty(self) -> bool:
        """The queue answered nothing, so every waiting row may be named: whether any waits."""
        self._served = {kind: ServedRows(self._batch_size, 0, None) for kind in KINDS}
        return self._unconfirmed.left or bool(self._later_files)

    async def acknowledge(
        self,
        done: dict[str, list[int]],
        items: list[DocumentItem],
        send: Callable[[dict[str, list[int]], int], Awaitable[bool]],
    ) -> None:
        """DELETE (`send`) the rows done of the batch `items` with the waiting rows the claim lets it name."""
        self._note_left_locked(done, items if self._served is not None else [])
        if self._served is None:
            self._later_files = [*self._later_files, *done["files"]][-MAX_LATER_FILES:]
            await self._unconfirmed.settle([], False, items, done["content_providers"])
            return
        served = self._served["files"]
        files = [row for row in self._later_files if served.may_name(row) and ("files", row) not in self._left_locked]
        named_files = set(files)
        self._later_files = [row for row in self._later_files if row not in named_files]
        body = {**done, "files": list(dict.fromkeys([*done["files"], *files]))}
        locked = {row for kind, row in self._left_locked if kind == "content_providers"}
        named, noted = await self._unconfirmed.named_with(body, self._served["content_providers"], locked)
        answered = await send(named, sum(map(len, named.values())))
        await self._unconfirmed.settle(noted, answered, items, done["content_providers"])

    def _note_left_locked(self, done: dict[str, list[int]], claimed: list[DocumentItem]) -> None:
        """The rows of a claimed batch not done are left locked; a done row, or one whose lock ended, no more."""
        now = time.monotonic()
        for item in claimed:
            self._left_locked[(item.kind, item.row_id)] = now
        for kind, rows in done.items():
            for row in rows:
                self._left_locked.pop((kind, row), None)
        kept = [(key, at) for key, at in self._left_locked.items() if now - at < PHP_LOCK_S]
        self._left_locked = dict(sorted(kept, key=lambda entry: entry[1])[-MAX_LEFT_LOCKED:])
