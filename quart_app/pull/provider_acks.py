"""Content-provider rows whose DELETE was lost (PHP app 5.4+): named in every documents DELETE until Nextcloud answers
one (also after a restart, and by any replica: they are read from the database), and the applied actions that may
concern them kept until then (migration 0018). Only right after a claim showing that no unclaimed row can hold their
id (queue_loop.ServedRows): Nextcloud reuses ids after a restore of its database, and the DELETE deleted a new row.

Such a row lists its readers of when the provider submitted it, and Nextcloud serves it again when its 24 h lock ends,
or whenever the app runs again after that: the actions received since are applied to that list
(pull/queued_readers.py). They were forgotten two days after their own acknowledgement, so a row served again later
gave back a reader the provider had removed (or an item it had deleted). A file row lists its readers of the moment
Nextcloud serves it: nothing is kept for it.

A row first served days after such an action (a backlog that long) is no row of ours yet: the actions that may concern
any provider row are kept until a documents poll more than a day after their receipt found the provider queue drained
(fewer provider rows served than asked: Nextcloud held no other one unclaimed), noted once its batch is done
(migration 0019).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence

import psycopg

from quart_app.pull.queue_items import DocumentItem
from quart_app.pull.queue_loop import ServedRows
from quart_app.services.source_order import bare_provider_key
from quart_app.store import Database, StoreError
from quart_app.store.database_failure import loggable_message
from quart_app.store.provider_row_store import (
    UnconfirmedProviderRow,
    forget_confirmed,
    note_drained,
    record_unconfirmed,
    unconfirmed_row_ids,
)

log = logging.getLogger(__name__)

# unconfirmed rows named in one DELETE, at most (Nextcloud ignores ids it no longer has)
MAX_UNCONFIRMED = 10_000
# a drained provider queue is noted at most this often (the actions it lets go are kept more than a day anyway)
NOTE_DRAINED_EVERY_S = 600.0


class UnconfirmedProviderRows:
    """What the documents loop names in a DELETE besides its batch, and what it notes once the DELETE is answered or
    lost."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # noted rows may wait to be named (also those of before a restart)
        self.left = True
        self._drained_noted_at = -NOTE_DRAINED_EVERY_S

    async def note_drained(self, polled_at: float) -> None:
        """A poll at `polled_at` (monotonic) served fewer provider rows than asked, and its batch is done."""
        if time.monotonic() - self._drained_noted_at < NOTE_DRAINED_EVERY_S:
            return
        try:
            async with self._db.connection() as conn:
                await note_drained(conn, time.monotonic() - polled_at)
        except (psycopg.Error, StoreError) as exc:
            # noted at a later poll: the actions that may concern a provider row are kept until then
            log.warning("documents queue: the drained provider queue not noted: %s", loggable_message(exc))
            return
        self._drained_noted_at = time.monotonic()

    async def named_with(
        self, done: dict[str, list[int]], served: ServedRows | None, locked: Collection[int] = ()
    ) -> tuple[dict[str, list[int]], list[int]]:
        """The DELETE body, the rows done and the provider rows noted as unconfirmed that the claim which `served` the
        content queue shows no unclaimed row can hold (none without a claim), nor a row of ours `locked` and not done;
        and those named."""
        self.left = True
        try:
            async with self._db.connection() as conn:
                noted = await unconfirmed_row_ids(conn, MAX_UNCONFIRMED)
        except (psycopg.Error, StoreError) as exc:
            log.warning("documents queue: unconfirmed acknowledgements not read: %s", loggable_message(exc))
            return done, []
        named = [row for row in noted if served is not None and served.may_name(row) and row not in locked]
        self.left = len(named) < len(noted)
        return {**done, "content_providers": list(dict.fromkeys([*done["content_providers"], *named]))}, named

    async def settle(self, noted: list[int], answered: bool, items: Sequence[DocumentItem], done: list[int]) -> None:
        """After the DELETE naming the `noted` rows and the provider rows `done` of `items` (the batch, as claimed):
        answered, the noted rows are gone from Nextcloud; lost, those done are noted too (until a DELETE naming them
        is answered)."""
        self.left = self.left or not answered
        rows = set(done)
        lost = [_unconfirmed(item) for item in items if item.kind == "content_providers" and item.row_id in rows]
        if not (noted if answered else lost):
            return  # no write for a batch whose DELETE was answered with nothing noted
        try:
            async with self._db.connection() as conn:
                if answered:
                    await forget_confirmed(conn, noted)
                else:
                    await record_unconfirmed(conn, lost)
        except (psycopg.Error, StoreError) as exc:
            # a lost row not noted is served again with its old readers: within two days of a removal it still loses it
            log.warning(
                "documents queue: %d provider row(s) %s not noted: %s",
                len(noted) if answered else len(lost),
                "acknowledged" if answered else "whose acknowledgement was lost",
                loggable_message(exc),
            )


def _unconfirmed(item: DocumentItem) -> UnconfirmedProviderRow:
    providers = tuple(dict.fromkeys([item.provider, bare_provider_key(item.provider)[1]]))
    return UnconfirmedProviderRow(item.row_id, item.source_id, providers, tuple(item.user_ids))
