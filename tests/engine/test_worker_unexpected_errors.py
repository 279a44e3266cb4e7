"""An unexpected exception while a batch is processed (a bug in the worker or in an embedder runtime, not an outage
and not an error about the texts): the batch stayed leased for `lease_s` (10 min), came back, met the bug again and
waited another 10 min, again and again, with nothing in /status. Now it counts as a failed attempt with backoff."""

from __future__ import annotations

import logging
from typing import Literal

import pytest
from async_wait import wait_until
from embedding_service_fake import EmbeddingServiceFake
from engine_kit import rows, scalar, seed_documents

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.services.status import status
from quart_app.store import Database

MAX_ATTEMPTS = 3
# the shipped 10-minute lease: a batch left to it cannot finish within the test's 20 s
CONFIG = EmbeddingWorkerConfig.model_validate(
    {
        "workers": 1,
        "batch_tokens": 100_000,
        "lease_s": 600,
        "idle_poll_s": 0.2,
        "max_attempts": MAX_ATTEMPTS,
        "backoff_base_s": 0.05,
        "backoff_max_s": 0.1,
    }
)
REASON = "unexpected error in the embedding worker: ValueError: a bug in the runtime"


class BuggyEmbedder:
    """The embedding client behind a runtime with a bug: its first `failures` calls raise a ValueError."""

    def __init__(self, client: EmbeddingClient, failures: int) -> None:
        self._client = client
        self._failures = failures

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if self._failures > 0:
            self._failures -= 1
            raise ValueError("a bug in the runtime")
        return await self._client.embed(texts, input_type)


async def _run_until_settled(db: Database, failures: int) -> None:
    async def nothing_queued() -> bool:
        return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0)

    with EmbeddingServiceFake() as service:
        async with (
            EmbeddingClient(service.url, send_input_type=False, timeout_s=30) as client,
            EmbeddingWorker(db, BuggyEmbedder(client, failures), CONFIG),
        ):
            await wait_until(nothing_queued, "the queue to settle", timeout_s=20)


async def test_a_batch_that_met_a_bug_once_is_tried_again_soon_not_after_its_lease(
    db: Database, chunker: TokenChunker, caplog: pytest.LogCaptureFixture
) -> None:
    total = await seed_documents(db, chunker, 2)
    with caplog.at_level(logging.WARNING, logger="quart_app.services.embedding_worker"):
        await _run_until_settled(db, failures=1)
    assert await rows(db, "SELECT embed_state, attempts, count(*) FROM chunks GROUP BY 1, 2") == [
        ("embedded", 1, total)
    ]
    assert "a bug in the runtime" in caplog.text


async def test_a_batch_that_always_meets_a_bug_fails_with_the_reason_after_its_attempts(
    db: Database, chunker: TokenChunker
) -> None:
    total = await seed_documents(db, chunker, 2)
    await _run_until_settled(db, failures=1_000)
    assert await rows(db, "SELECT embed_state, attempts, count(*) FROM chunks GROUP BY 1, 2") == [
        ("failed", MAX_ATTEMPTS, total)
    ]
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE lease_token IS NOT NULL") == 0
    assert (await status(db))["chunks"]["failure_reasons"] == {REASON: total}
