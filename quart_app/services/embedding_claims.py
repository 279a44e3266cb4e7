"""The embedding worker's claims on the chunk queue: sized to the token budget, kept leased while a batch is embedded,
given back when the batch cannot finish.

A claim's lease is renewed every third of `lease_s` while its embedding request runs, so a slow request is not taken
over and embedded twice; batches cut by a database outage are given back once it answers, not when their lease ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

import psycopg

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.services.errors import LeaseLostError
from quart_app.store import Database, StoreError
from quart_app.store.database_failure import loggable_message
from quart_app.store.queue_store import Claim, claim_batch, has_claimable, release, renew

logger = logging.getLogger(__name__)

_CLAIM_RETRIES = 50
_MAX_CLAIM_ROWS = 1024
T = TypeVar("T")


class EmbeddingClaims:
    """One worker's claims: `next_claim()`, embed `while_leased()`, `release_claim()` when a batch cannot finish."""

    def __init__(self, db: Database, config: EmbeddingWorkerConfig) -> None:
        self._db = db
        self._config = config
        # running estimate of tokens per chunk, to size claims; starts low so the first batch is full
        self._tokens_per_chunk = 32.0
        # batches whose end could not be written while the database was away: given back once it answers
        self._to_release: list[Claim] = []

    def release_later(self, claim: Claim) -> None:
        """Give `claim` back at the next `release_pending()` (the database failed mid-batch)."""
        self._to_release.append(claim)

    async def release_claim(self, claim: Claim) -> None:
        """Give `claim` back now, or at the next `release_pending()` while the database is away."""
        try:
            async with self._db.connection() as conn:
                await release(conn, claim)
        except (psycopg.Error, StoreError, OSError):
            self._to_release.append(claim)

    async def release_pending(self) -> None:
        """Give back the batches cut by a database outage; raises the store's error while it is still away."""
        while self._to_release:
            claim = self._to_release.pop()
            try:
                async with self._db.connection() as conn:
                    await release(conn, claim)
            except BaseException:
                self._to_release.append(claim)
                raise
            logger.info("embedding batch of %d chunks given back after a database outage", len(claim.chunks))

    async def next_claim(self) -> Claim | None:
        """Claim about `batch_tokens` of due chunks under a new lease; None when nothing is due."""
        cfg = self._config
        async with self._db.connection() as conn:
            for _ in range(_CLAIM_RETRIES):
                # lock about as many rows as fit the budget, so concurrent claims do not starve each other
                rows = max(1, min(_MAX_CLAIM_ROWS, int(cfg.batch_tokens / self._tokens_per_chunk * 1.2) + 1))
                claim = await claim_batch(conn, cfg.batch_tokens, cfg.lease_s, rows)
                if claim.chunks:
                    tokens = sum(c.token_count for c in claim.chunks) / len(claim.chunks)
                    self._tokens_per_chunk = 0.7 * self._tokens_per_chunk + 0.3 * max(1.0, tokens)
                    return claim
                if not await has_claimable(conn):
                    return None
                # due chunks exist but another worker's claim transaction holds them for a moment
                await asyncio.sleep(0.02)
        return None

    async def while_leased(self, claim: Claim, work: Awaitable[T]) -> T:
        """Await `work` (an embedding request), renewing the claim's lease every third of `lease_s` meanwhile.

        Raises LeaseLostError, and cancels `work`, when no chunk of the claim is held under its token any more.
        """
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._config.lease_s / 3)
                if done:
                    return task.result()
                if not await self._renew(claim):
                    raise LeaseLostError(
                        "its lease ran out and another worker claimed it; raise embedding_worker.lease_s if the"
                        " database was slow to answer"
                    )
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})

    async def _renew(self, claim: Claim) -> bool:
        """False when the claim is lost; a database that cannot be reached leaves the question open (True)."""
        try:
            async with self._db.connection() as conn:
                return await renew(conn, claim, self._config.lease_s) > 0
        except (psycopg.Error, StoreError) as exc:
            # the write checks the token anyway: if another worker takes the batch meanwhile, ours is not written
            logger.warning(
                "embedding batch: could not renew the lease of %d chunks: %s", len(claim.chunks), loggable_message(exc)
            )
            return True
