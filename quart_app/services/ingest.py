"""The ingest service: dedupe, parse, chunk and write each document of a batch in its own transaction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

import psycopg

from quart_app.loaders.errors import EmptyDocumentError, LoaderError, ParsePoolError
from quart_app.services.errors import SourceNotClaimedError
from quart_app.services.source_order import IngestClaim, SourceOrder, Ticket
from quart_app.services.source_spool import file_sha256
from quart_app.source_fields import storable_text
from quart_app.store import Database, StoreError
from quart_app.store.database_failure import loggable_message
from quart_app.store.document_store import (
    ChunkRecord,
    DocumentRecord,
    ExistingDocument,
    find_existing,
    touch_unchanged,
    write_failed,
    write_indexed,
)

logger = logging.getLogger(__name__)


class ChunkLike(Protocol):
    """What ingest needs from quart_app.loaders.worker_protocol.DocumentChunk."""

    @property
    def text(self) -> str: ...

    @property
    def start(self) -> int: ...

    @property
    def token_count(self) -> int: ...

    @property
    def text_hash(self) -> bytes: ...

    @property
    def header(self) -> str: ...


class DocumentParser(Protocol):
    """What ingest needs from quart_app.loaders.parse_pool.ParsePool: a file in, its chunks out; `name` is how its
    errors name the file."""

    async def parse_and_chunk(self, path: Path, mimetype: str, name: str = "") -> Sequence[ChunkLike]: ...


@dataclass(frozen=True, slots=True)
class IncomingSource:
    """One file of a /loadSources batch, already spooled to disk."""

    source_id: str
    user_ids: list[str]
    title: str
    mimetype: str
    modified: int
    provider: str
    path: Path
    size: int
    # sha256 of the file; the spool computes it while writing, otherwise ingest reads the file once
    content_hash: bytes | None = None
    # user_ids name every reader (4.0+ userIds, pull-mode queue items): an unchanged re-send sets exactly them. The
    # beta PHP app sends one userId per load of the same file, so its loads only add readers.
    readers_complete: bool = True

    @property
    def document_name(self) -> str:
        """How errors and logs name it: its title (what the user calls the file) and its source id (file id included),
        never its spool file or its text."""
        return f"{self.title!r} (source {self.source_id!r})" if self.title else f"source {self.source_id!r}"


@dataclass(slots=True)
class IngestReport:
    """Per-source outcome: loaded (indexed or access merged), retry later (transient), failed (with reason)."""

    loaded: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class IngestCounters:
    """Work done since the service was created (for tests, logs and benchmarks)."""

    parsed: int = 0
    unchanged: int = 0
    chunks_written: int = 0
    chunks_queued: int = 0
    failed: int = 0
    retried: int = 0


class IngestService:
    """Turns batches of spooled files into stored documents, chunks and access rows."""

    def __init__(
        self,
        db: Database,
        parser: DocumentParser,
        *,
        parse_concurrency: int = 2,
        on_chunks_queued: Callable[[], None] | None = None,
        order: SourceOrder | None = None,
    ) -> None:
        self._db = db
        self._parser = parser
        self._parse_slots = asyncio.Semaphore(max(1, parse_concurrency))
        self._on_chunks_queued = on_chunks_queued
        self.order = order if order is not None else SourceOrder()
        self.counters = IngestCounters()

    async def ingest(
        self, batch: list[IncomingSource], *, arrival: Ticket | None = None, claim: IngestClaim | None = None
    ) -> IngestReport:
        """Process a batch; raises SourceBusyError (nothing done) if a source is held by another request.

        `arrival` is when the load arrived (SourceOrder.arrival): a source whose readers changed since then is
        not written but reported for retry. A caller already holding the sources passes its `claim` instead.
        """
        unique = list({source.source_id: source for source in batch}.values())
        if not unique:
            return IngestReport()
        if claim is not None:
            return await self._ingest_claimed(unique, claim)
        async with AsyncExitStack() as stack:
            ticket = await stack.enter_async_context(self.order.arrival()) if arrival is None else arrival
            held = await stack.enter_async_context(self.order.claim(unique, ticket))
            return await self._ingest_claimed(unique, held)

    async def _ingest_claimed(self, unique: list[IncomingSource], claim: IngestClaim) -> IngestReport:
        report = IngestReport()
        for source_id in claim.stale:
            logger.info("ingest: readers of %s changed since this load arrived; to retry with the new list", source_id)
            report.retry.append(source_id)
            self.counters.retried += 1
        unheld = [s.source_id for s in unique if s.source_id not in claim.held and s.source_id not in claim.stale]
        if unheld:
            raise SourceNotClaimedError(unheld)
        fresh = [s for s in unique if s.source_id in claim.held]
        if not fresh:
            return report
        try:
            async with self._db.connection() as conn:
                existing = await find_existing(conn, [s.source_id for s in fresh])
        except (psycopg.Error, StoreError) as exc:
            logger.warning(
                "ingest: document lookup failed, %d source(s) to retry: %s", len(fresh), loggable_message(exc)
            )
            report.retry.extend(s.source_id for s in fresh)
            self.counters.retried += len(fresh)
            return report
        # every source finishes (or fails on its own) before the batch returns and its spool files go
        outcomes = await asyncio.gather(
            *(self._one(s, existing.get(s.source_id)) for s in fresh), return_exceptions=True
        )
        queued = False
        for source, outcome in zip(fresh, outcomes, strict=True):
            kind, reason, had_queue = (
                self._unexpected(source, outcome) if isinstance(outcome, BaseException) else outcome
            )
            queued = queued or had_queue
            if kind == "loaded":
                report.loaded.append(source.source_id)
            elif kind == "retry":
                report.retry.append(source.source_id)
            else:
                report.failed[source.source_id] = reason
        if queued and self._on_chunks_queued is not None:
            self._on_chunks_queued()
        counts = {"loaded": len(report.loaded), "retry": len(report.retry), "failed": len(report.failed)}
        logger.info("ingest batch: %(loaded)d loaded, %(retry)d to retry, %(failed)d failed", counts, extra=counts)
        return report

    def _unexpected(self, source: IncomingSource, error: BaseException) -> tuple[str, str, bool]:
        """A bug of ours in one source must not take its siblings down: it is logged and retried on its own."""
        if not isinstance(error, Exception):
            raise error
        logger.error(
            "ingest: source %s hit an unexpected %s; to retry", source.source_id, type(error).__name__, exc_info=error
        )
        self.counters.retried += 1
        return "retry", f"{type(error).__name__}: {error}", False

    async def _one(self, source: IncomingSource, existing: ExistingDocument | None) -> tuple[str, str, bool]:
        try:
            size = source.size
            if source.content_hash is None:
                size, content_hash = await asyncio.to_thread(file_sha256, source.path)
            else:
                content_hash = source.content_hash
            record = DocumentRecord(
                source.source_id,
                source.provider,
                storable_text(source.title),  # a title PostgreSQL refuses would be retried forever
                source.mimetype,
                source.modified,
                content_hash,
                size,
            )
            if existing is not None and existing.state == "indexed" and existing.content_hash == content_hash:
                touch = partial(touch_unchanged, doc=record, user_ids=source.user_ids, exact=source.readers_complete)
                if await self._db.run_transaction(touch, f"refreshing {source.source_id}"):
                    self.counters.unchanged += 1
                    return "loaded", "", False
            return await self._parse_and_write(source, record)
        except (psycopg.Error, StoreError, ParsePoolError, OSError) as exc:
            # PostgreSQL's DETAIL quotes the row it refused, a trigger's RAISE its first line: a chunk's text
            reason = loggable_message(exc)
            logger.warning("ingest: source %s to retry after %s: %s", source.source_id, type(exc).__name__, reason)
            self.counters.retried += 1
            return "retry", reason, False

    async def _parse_and_write(self, source: IncomingSource, record: DocumentRecord) -> tuple[str, str, bool]:
        try:
            async with self._parse_slots:
                # errors name the document, never the spool's temp file (src-….part) that means nothing to an admin
                parsed = await self._parser.parse_and_chunk(source.path, source.mimetype, source.document_name)
                self.counters.parsed += 1
                chunks = await asyncio.to_thread(self._records, parsed, source)
        except LoaderError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "ingest: source %s failed: %s", source.source_id, reason, extra={"source_id": source.source_id}
            )
            failed = partial(write_failed, doc=record, error=reason, user_ids=source.user_ids)
            await self._db.run_transaction(failed, f"recording the failure of {source.source_id}")
            self.counters.failed += 1
            return "failed", reason, False
        write = partial(write_indexed, doc=record, chunks=chunks, user_ids=source.user_ids)
        result = await self._db.run_transaction(write, f"writing {source.source_id}")
        self.counters.chunks_written += result.chunks
        self.counters.chunks_queued += result.queued
        logger.debug(
            "ingest: %s v%d, %d chunks (%d queued)", source.source_id, result.version, result.chunks, result.queued
        )
        return "loaded", "", result.queued > 0

    def _records(self, chunks: Sequence[ChunkLike], source: IncomingSource) -> list[ChunkRecord]:
        records = [ChunkRecord(i, c.text, c.start, c.token_count, c.text_hash, c.header) for i, c in enumerate(chunks)]
        if not records:
            raise EmptyDocumentError(f"{source.document_name} ({source.mimetype}) has no text to index")
        return records
