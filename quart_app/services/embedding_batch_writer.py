"""Writes an embedded batch's vectors under its lease, riding out a database outage and rows held by another
transaction; a batch the database refuses for good is written text by text, so only the refused chunks fail."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import numpy.typing as npt

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.services.embedding_counters import WorkerCounters
from quart_app.store import Database, DatabaseUnavailableError
from quart_app.store.database_failure import loggable_message
from quart_app.store.errors import PERMANENT_ERRORS
from quart_app.store.queue_store import Claim, ClaimedChunk, complete, fail, still_leased

logger = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]
# chunks another transaction held while their batch was written: first and longest pause before writing them again,
# and how long to keep trying before leaving them to their lease
SKIPPED_ROWS_FIRST_WAIT_S = 0.02
SKIPPED_ROWS_MAX_WAIT_S = 2.0
SKIPPED_ROWS_WAIT_S = 60.0


class EmbeddingBatchWriter:
    """`complete_batch()` writes a claim's vectors, `fail_batch()` records an attempt that failed."""

    def __init__(
        self,
        db: Database,
        config: EmbeddingWorkerConfig,
        counters: WorkerCounters,
        retry_wait: Callable[[int], float],
    ) -> None:
        self._db = db
        self._config = config
        self._counters = counters
        # seconds to wait after this many consecutive database outages
        self._retry_wait = retry_wait

    async def complete_batch(self, claim: Claim, vectors: dict[bytes, Vector], new_hashes: list[bytes]) -> int:
        if not claim.chunks:
            return 0
        keep_until = time.monotonic() + self._config.lease_s
        written = await self._write(claim, vectors, new_hashes, keep_until)
        if written < len(claim.chunks):
            written += await self._write_skipped(claim, vectors, new_hashes, keep_until)
        self._counters.batches += 1
        self._counters.chunks_embedded += written
        if written < len(claim.chunks):
            logger.info(
                "embedding batch: %d of %d chunks gone or re-leased meanwhile",
                len(claim.chunks) - written,
                len(claim.chunks),
            )
        return written

    async def _write(
        self, claim: Claim, vectors: dict[bytes, Vector], new_hashes: list[bytes], keep_until: float
    ) -> int:
        """complete() the claim; when the database refuses it for good (a constraint or a data error), write its texts
        one by one and fail only the chunks whose vector is refused: given back, the batch came first again forever."""
        try:
            return await self._write_through_outages(claim, vectors, new_hashes, keep_until)
        except PERMANENT_ERRORS as exc:
            refusal = loggable_message(exc)
        by_text: dict[bytes, list[ClaimedChunk]] = {}
        for chunk in claim.chunks:
            by_text.setdefault(chunk.text_hash, []).append(chunk)
        if len(by_text) == 1:
            await self.fail_batch(claim, f"the database refused this chunk's vector: {refusal}", retryable=False)
            return 0
        written = 0
        for chunks in by_text.values():
            written += await self._write(Claim(claim.token, chunks), vectors, new_hashes, keep_until)
        return written

    async def _write_through_outages(
        self, claim: Claim, vectors: dict[bytes, Vector], new_hashes: list[bytes], keep_until: float
    ) -> int:
        """complete() the claim, trying again while the database is away (until `keep_until`)."""
        outages = 0
        write = partial(complete, claim=claim, vectors=vectors, new_hashes=new_hashes)
        while True:
            try:
                # a deadlock victim is written again by run_transaction: the vectors are still good
                return await self._db.run_transaction(write, "writing an embedding batch")
            except DatabaseUnavailableError as exc:
                # keep the vectors until the database is back rather than embedding the batch again after its lease
                outages += 1
                if time.monotonic() >= keep_until:
                    raise
                logger.warning("embedding batch write: %s; trying again", exc)
                await asyncio.sleep(self._retry_wait(outages))

    async def _write_skipped(
        self, claim: Claim, vectors: dict[bytes, Vector], new_hashes: list[bytes], keep_until: float
    ) -> int:
        """Write the claim's chunks that complete() skipped because another transaction held them (a delete, or a
        concurrent claim whose scan locked them for a moment), once it lets go: left to their lease they stalled the
        queue for 10 minutes. Gives up after SKIPPED_ROWS_WAIT_S; the lease then brings them back."""
        written = 0
        wait = SKIPPED_ROWS_FIRST_WAIT_S
        give_up = min(keep_until, time.monotonic() + SKIPPED_ROWS_WAIT_S)
        while time.monotonic() < give_up:
            async with self._db.connection() as conn:
                pending = await still_leased(conn, claim)
            if not pending:
                break
            await asyncio.sleep(wait)
            wait = min(wait * 2, SKIPPED_ROWS_MAX_WAIT_S)
            rest = Claim(claim.token, [c for c in claim.chunks if c.id in pending])
            written += await self._write(rest, vectors, new_hashes, keep_until)
        return written

    async def fail_batch(self, claim: Claim, error: str, retryable: bool) -> int:
        self._counters.failed_batches += 1
        logger.warning(
            "embedding batch of %d chunks failed (%s): %s", len(claim.chunks), "retry" if retryable else "fatal", error
        )
        cfg = self._config
        async with self._db.connection() as conn:
            await fail(conn, claim, error, retryable, cfg.max_attempts, cfg.backoff_base_s, cfg.backoff_max_s)
        return 0
