"""The documents loop (PHP app 5.4+): claim a batch, fetch files, ingest, acknowledge what is done for good.

A claimed item not acknowledged stays locked in Nextcloud for 24 h, so transient failures (a file being saved, 429, 5xx,
connection loss) are retried here with backoff first, and while Nextcloud itself is away (maintenance mode, a restart)
the batch waits for it without using up its files' tries; 404, invalid items and files still unreadable (422) after
their tries are acknowledged as failed. A file failing all its tries otherwise is kept and tried again later
(pull/file_retries.py), as is a batch in hand when the app is killed. A content-provider row whose DELETE was lost is
named in the next ones, and a poll that finds the provider queue drained is noted (pull/provider_acks.py). The same
ingest service as PUT /loadSources does the work.

The batch's sources are held in the SourceOrder from before the downloads until they are written, so an access
change or delete from the actions loop waits and then wins. An item whose source, provider or readers changed
between the poll and that claim carries an outdated reader list: it goes again with the actions received since the
poll applied to it, and is left for Nextcloud to serve again only if it changes once more meanwhile. A
content-provider item lists its readers of when it was submitted: the actions received since are applied to that list
first (pull/queued_readers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import psycopg

from appliance.config import AppConfig
from quart_app.background_loops import LoopHandle, backoff
from quart_app.nextcloud import NextcloudClient
from quart_app.pull.document_acks import DocumentAcks
from quart_app.pull.document_fetch import DocumentFetcher, FileUnavailableError, incoming_source
from quart_app.pull.file_retries import FileRetries, Retry
from quart_app.pull.pull_gate import DOCUMENTS_ACK_PATH, DOCUMENTS_PATH, PullGate
from quart_app.pull.queue_items import DocumentItem, RejectedItem, parse_documents
from quart_app.pull.queue_loop import QueueLoop, rejected_row_ids
from quart_app.pull.queued_readers import current_readers, readers_since_poll
from quart_app.services.errors import SourceBusyError
from quart_app.services.ingest import IncomingSource, IngestReport, IngestService
from quart_app.services.source_order import IngestClaim, Ticket
from quart_app.services.source_spool import SourceSpool, SpooledFile
from quart_app.store import Database, StoreError
from quart_app.store.database_failure import loggable_message
from quart_app.store.file_retry_store import RetryPlan

log = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    """Queue row ids to acknowledge, per kind, how many were left locked, and which of those to try again later or
    leave to Nextcloud (their readers changed since the claim)."""

    done: dict[str, list[int]] = field(default_factory=lambda: {"files": [], "content_providers": []})
    left_locked: int = 0
    unavailable: list[tuple[DocumentItem, FileUnavailableError]] = field(default_factory=list)
    stale: list[DocumentItem] = field(default_factory=list)

    def ack(self, kind: str, row_id: int) -> None:
        self.done[kind].append(row_id)


class DocumentPoller(QueueLoop[DocumentItem]):
    """Run by BackgroundLoops as `documents`."""

    queue = "documents"

    def __init__(
        self,
        nextcloud: NextcloudClient,
        gate: PullGate,
        ingest: IngestService,
        spool: SourceSpool,
        config: AppConfig,
        db: Database,
        replica: str,
    ) -> None:
        super().__init__(nextcloud, gate, config.pull)
        self._ingest = ingest
        self._batch_size = config.doc_indexing_batch_size
        self._fetcher = DocumentFetcher(nextcloud, gate, spool, config.pull, config.concurrent_file_fetches)
        # when the batch being processed was polled (set by batch_scope)
        self._polled: Ticket | None = None
        self._db = db
        self.retries = FileRetries(db, config.pull.retry_later_s, replica)
        self._acks = DocumentAcks(db, self._batch_size)
        # when the batch in hand was polled, if fewer provider rows than asked were served (pull/provider_acks.py)
        self._drained_poll: float | None = None
        # the batch in hand is kept files taken for a later try (by queue row), each with when it was taken
        self._retrying: dict[tuple[str, int], tuple[Retry, float]] = {}

    @contextlib.asynccontextmanager
    async def batch_scope(self) -> AsyncIterator[Ticket]:
        # the readers Nextcloud lists are as of this poll: a change applied after it must win
        async with self._ingest.order.arrival() as polled:
            self._polled = polled
            try:
                yield polled
            finally:
                self._polled = None

    async def run(self, handle: LoopHandle) -> None:
        await self.retries.release_own_batch()
        await super().run(handle)

    async def after_empty_claim(self, handle: LoopHandle) -> None:
        # left to the next batch, lost DELETEs left their rows locked in Nextcloud until served again a day later
        if self._acks.queue_empty():
            await self._acknowledge({"files": [], "content_providers": []}, [], handle)

    async def claim(self) -> tuple[list[DocumentItem], list[RejectedItem]]:
        """Kept files due for a later try go first (their rows are locked for us); else a batch from the queue,
        written down as claimed (a kill -9 during it would otherwise leave its rows locked for 24 h)."""
        self._retrying, self._drained_poll = {}, None
        self._acks.kept_files_taken()
        try:
            due = await self.retries.take_due(self._batch_size)
        except (psycopg.Error, StoreError) as exc:
            log.warning("documents queue: files kept for a later try could not be read: %s", loggable_message(exc))
            due = []
        if due:
            taken = time.monotonic()
            self._retrying = {(r.item.kind, r.item.row_id): (r, taken) for r in due}
            return [r.item for r in due], []
        items, rejected = parse_documents(await self._nc.ocs("GET", DOCUMENTS_PATH, params={"n": self._batch_size}))
        if self._acks.claimed(items, rejected) and self._polled:
            self._drained_poll = self._polled.at
            if not (items or rejected):
                await self._acks.note_drained(self._drained_poll)
        try:
            await self.retries.hold_batch(items)
        except (psycopg.Error, StoreError) as exc:
            log.warning(
                "documents queue: a batch of %d not written down as claimed: %s", len(items), loggable_message(exc)
            )
        return items, rejected

    async def process(self, items: list[DocumentItem], rejected: list[RejectedItem], handle: LoopHandle) -> bool:
        outcome = BatchOutcome()
        for kind in outcome.done:
            outcome.done[kind].extend(rejected_row_ids(rejected, kind))
        leased = asyncio.ensure_future(self.retries.keep_batch_leased())
        try:
            finished = await self._until_done_or_stopped(self.index(items, outcome, handle), handle)
        finally:
            leased.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leased
        if not finished:
            await self._keep_for_restart(items)
            return False
        handle.status.count("left_locked", outcome.left_locked)
        plans = self._plan_later_tries(outcome, handle)
        # the rows stay locked for 24 h if this fails, then come back; unchanged files are not parsed again
        await self._acknowledge(outcome.done, items, handle)
        if self._drained_poll is not None:
            await self._acks.note_drained(self._drained_poll)
        forgotten = {kind: list(rows) for kind, rows in outcome.done.items()}
        for item in outcome.stale:
            forgotten[item.kind].append(item.row_id)
        try:
            await self.retries.forget(forgotten)
            await self.retries.keep(plans)
            await self.retries.end_batch()
        except (psycopg.Error, StoreError) as exc:
            # kept files not written stay locked until Nextcloud serves them again, as before
            log.warning(
                "documents queue: %d file(s) to try again later could not be kept: %s",
                len(plans),
                loggable_message(exc),
            )
        return True

    async def _acknowledge(self, done: dict[str, list[int]], items: list[DocumentItem], handle: LoopHandle) -> None:
        """DELETE the rows done with those waiting to be named (pull/document_acks.py)."""
        await self._acks.acknowledge(
            done, items, lambda body, count: self.acknowledge(DOCUMENTS_ACK_PATH, body, count, handle)
        )

    async def _keep_for_restart(self, items: list[DocumentItem]) -> None:
        """Stopping: the batch is not acknowledged, and Nextcloud would serve its rows again only when their 24 h lock
        ends; kept here, it goes first at the next start (what is already stored is found unchanged)."""
        plans = [self.retries.plan_restart(item, *self._tries_and_claim_age(item)) for item in items]
        try:
            await self.retries.keep(plans)
        except (psycopg.Error, StoreError) as exc:
            log.warning(
                "documents queue: stopped during a batch of %d that could not be kept (%s); Nextcloud serves it again"
                " when its lock ends (24 h after the claim)",
                len(items),
                exc,
            )
            return
        log.info("documents queue: stopped during a batch of %d; kept to go first at the next start", len(items))

    def _tries_and_claim_age(self, item: DocumentItem) -> tuple[int, float]:
        """Later tries made so far and seconds since Nextcloud locked the item's row for us."""
        assert self._polled is not None, "process runs inside batch_scope"
        if (kept := self._retrying.get((item.kind, item.row_id))) is not None:
            retry, taken = kept
            return retry.tries, retry.claimed_s_ago + time.monotonic() - taken
        return 0, time.monotonic() - self._polled.at

    def _plan_later_tries(self, outcome: BatchOutcome, handle: LoopHandle) -> list[RetryPlan]:
        """When to try each file that failed its tries again; one with no try left before its row's lock ends is
        acknowledged as failed (the file's own failure) or left to Nextcloud (ours: credentials)."""
        plans: list[RetryPlan] = []
        for item, error in outcome.unavailable:
            tries, claimed_s_ago = self._tries_and_claim_age(item)
            # a kept file's later try has just failed
            if (item.kind, item.row_id) in self._retrying:
                tries += 1
            plan = self.retries.plan(item, tries, claimed_s_ago, str(error))
            if plan is not None:
                log.info("documents queue: %s tried again in %.0f s", item.source_id, plan.delay_s)
                handle.status.count("retry_later")
                plans.append(plan)
            elif error.the_files_own:
                log.warning(
                    "documents queue: %s not indexed (no try left before its lock ends): %s", item.source_id, error
                )
                handle.status.count("failed")
                outcome.ack(item.kind, item.row_id)
            else:
                outcome.stale.append(item)  # forgotten here: Nextcloud serves it again when its lock ends
        return plans

    @staticmethod
    async def _until_done_or_stopped(work: Coroutine[Any, Any, None], handle: LoopHandle) -> bool:
        """Run `work`; if the app stops first, cancel it (downloads end, open transactions roll back): False."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(handle.stopping.wait())
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if task.done():
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False

    async def index(self, items: list[DocumentItem], outcome: BatchOutcome, handle: LoopHandle) -> None:
        """Hold the batch's sources, fetch or spool every item, ingest them together, record which rows are done.
        Items whose readers changed since the poll go again with their readers of now (left locked they would wait
        24 h); those that change once more meanwhile are left for Nextcloud to serve again."""
        assert self._polled is not None, "index runs inside batch_scope"
        stale = await self._index_fresh(items, self._polled, outcome, handle)
        if stale and not handle.stopping.is_set():
            polled_s_ago = time.monotonic() - self._polled.at
            # the new arrival comes first: a change after the actions are read makes the items stale again
            async with self._ingest.order.arrival() as now:
                try:
                    files = await readers_since_poll(self._db, [i for i in stale if i.kind == "files"], polled_s_ago)
                except (psycopg.Error, StoreError) as exc:
                    log.warning(
                        "documents queue: the actions since the poll could not be read: %s", loggable_message(exc)
                    )
                else:
                    log.info(
                        "documents queue: %d item(s) changed since the poll; go with their readers of now", len(stale)
                    )
                    provided = [item for item in stale if item.kind != "files"]
                    stale = await self._index_fresh([*files, *provided], now, outcome, handle)
        for item in stale:
            log.info("documents queue: %s changed since the poll; left for a later try", item.source_id)
            outcome.left_locked += 1
            outcome.stale.append(item)

    async def _index_fresh(
        self, items: list[DocumentItem], arrival: Ticket, outcome: BatchOutcome, handle: LoopHandle
    ) -> list[DocumentItem]:
        """Index the items whose readers did not change since `arrival`; those that did are returned, not indexed."""
        async with contextlib.AsyncExitStack() as held:
            claim = await self._hold(items, arrival, held, handle)
            if claim is None:
                outcome.left_locked += len(items)
                return []
            if busy := [item for item in items if item.source_id not in claim.held | set(claim.stale)]:
                log.info("documents queue: %d item(s) still busy; left for a later try", len(busy))
                outcome.left_locked += len(busy)
            held_items = await self._with_current_readers([i for i in items if i.source_id in claim.held], outcome)
            await self._index_held(held_items, claim, outcome, handle)
        return [item for item in items if item.source_id in claim.stale]

    async def _with_current_readers(self, items: list[DocumentItem], outcome: BatchOutcome) -> list[DocumentItem]:
        """Content-provider items with the readers the actions received since their submission leave; an item left
        with none (also a file after the actions since the poll) was deleted or taken from everybody while it waited,
        and is done."""
        provided = [item for item in items if item.kind == "content_providers"]
        files = [item for item in items if item.kind != "content_providers"]
        try:
            current = await current_readers(self._db, provided)
        except (psycopg.Error, StoreError) as exc:
            # indexed with the readers of their submission they could give back a reader the provider took away
            log.warning(
                "documents queue: %d provider item(s) left for a later try: %s", len(provided), loggable_message(exc)
            )
            outcome.left_locked += len(provided)
            return files
        for item in [*files, *current]:
            if not item.user_ids:
                log.info("documents queue: %s was removed while it waited in the queue; not indexed", item.source_id)
                outcome.ack(item.kind, item.row_id)
        return [item for item in [*files, *current] if item.user_ids]

    async def _hold(
        self, items: list[DocumentItem], polled: Ticket, held: contextlib.AsyncExitStack, handle: LoopHandle
    ) -> IngestClaim | None:
        """Claim the sources (a waiting access change goes first). Sources still busy after the tries are left out,
        so the rest of the batch goes on (one busy source used to leave the whole batch locked for 24 h); None when
        nothing could be held."""
        wanted = items
        for attempt in range(1, self._pull.fetch_attempts + 2):
            try:
                return await held.enter_async_context(self._ingest.order.claim(wanted, polled))
            except SourceBusyError as exc:
                log.info("documents queue: %s; waiting before indexing the batch", exc)
                if attempt < self._pull.fetch_attempts:
                    await handle.sleep(backoff(self._pull.fetch_backoff_s, self._pull.fetch_backoff_max_s, attempt))
                elif attempt == self._pull.fetch_attempts:
                    busy = set(exc.source_ids)
                    wanted = [item for item in wanted if item.source_id not in busy]
                    if not wanted:
                        break
        return None

    async def _index_held(
        self, items: list[DocumentItem], claim: IngestClaim, outcome: BatchOutcome, handle: LoopHandle
    ) -> None:
        spooled: list[SpooledFile] = []
        try:
            prepared = await asyncio.gather(*(self._fetcher.prepare(item, handle, spooled) for item in items))
            sources: list[IncomingSource] = []
            rows: dict[str, list[DocumentItem]] = {}
            for item, result in zip(items, prepared, strict=True):
                if isinstance(result, FileUnavailableError):
                    if result.permanent:
                        log.warning("documents queue: %s not indexed: %s", item.source_id, result)
                        handle.status.count("failed")
                        outcome.ack(item.kind, item.row_id)
                    else:
                        log.warning("documents queue: %s left for a later try: %s", item.source_id, result)
                        outcome.left_locked += 1
                        if not handle.stopping.is_set():
                            outcome.unavailable.append((item, result))
                    continue
                if item.source_id not in rows:
                    sources.append(incoming_source(item, result))
                rows.setdefault(item.source_id, []).append(item)
            report = await self._ingest_with_retry(sources, claim, handle)
        finally:
            # also on cancellation: every file spooled so far is removed
            for done in spooled:
                done.remove()
        # a failed source is acknowledged as upstream drops it; the ingest service logged its reason
        for source_id in [*report.loaded, *report.failed]:
            for item in rows[source_id]:
                outcome.ack(item.kind, item.row_id)
        handle.status.count("indexed", len(report.loaded))
        handle.status.count("failed", len(report.failed))
        outcome.left_locked += sum(len(rows[source_id]) for source_id in report.retry)

    async def _ingest_with_retry(
        self, sources: list[IncomingSource], claim: IngestClaim, handle: LoopHandle
    ) -> IngestReport:
        """Ingest; a database hiccup is retried here before giving up (the claim keeps the reader lists current).
        While the database is away the batch waits for it without using up its tries (left locked it would wait 24 h).
        """
        report = IngestReport()
        pending = sources
        attempt = 0
        while pending and attempt < self._pull.fetch_attempts:
            result = await self._ingest.ingest(pending, claim=claim)
            report.loaded += result.loaded
            report.failed.update(result.failed)
            pending = [s for s in pending if s.source_id in set(result.retry)]
            if not pending or await self._gate.wait_for_store(handle):
                continue
            attempt += 1
            if attempt < self._pull.fetch_attempts:
                await handle.sleep(backoff(self._pull.fetch_backoff_s, self._pull.fetch_backoff_max_s, attempt))
        report.retry = [s.source_id for s in pending]
        return report
