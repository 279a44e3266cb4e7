"""Waiting for an embedder that is still starting is INFO; one that stays away past the start-up grace, or that
answered and went away, is a WARNING (an admin reads a WARNING as a fault)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from async_wait import wait_until
from embedder_program import EmbedderProgram
from engine_kit import scalar, seed_documents
from local_ports import free_port

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services import embedder_outage
from quart_app.services.embedder_outage import EmbedderOutage
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database

FAST = {
    "workers": 1,
    "batch_tokens": 512,
    "idle_poll_s": 60.0,
    "outage_backoff_base_s": 0.05,
    "outage_backoff_max_s": 0.2,
}


def _outage_records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == embedder_outage.__name__]


async def _queue_done(db: Database) -> bool:
    return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0)


async def test_an_embedder_that_starts_answering_within_the_grace_is_waited_for_at_info(
    db: Database, chunker: TokenChunker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, embedder_outage.__name__)
    await seed_documents(db, chunker, 2)
    # the real embedder program, started only after the worker has found its port closed
    program = EmbedderProgram(tmp_path / "embedder.log")
    try:
        async with EmbeddingClient(program.url, timeout_s=30) as client:
            worker = EmbeddingWorker(db, client, EmbeddingWorkerConfig.model_validate(FAST), BackgroundLoops())
            async with worker:

                async def refused_twice() -> bool:
                    return worker.outage.failed_calls >= 2

                await wait_until(refused_twice, "two calls refused by the embedder not yet started")
                await asyncio.to_thread(program.start)
                await wait_until(lambda: _queue_done(db), "the queue to drain once the embedder answers")
    finally:
        program.stop()
    records = _outage_records(caplog)
    assert [m for level, m in records if level >= logging.WARNING] == []
    waiting = [m for level, m in records if level == logging.INFO and "waiting for the embedding service to start" in m]
    assert len(waiting) == 1 and "ConnectError" in waiting[0], records


async def test_an_embedder_away_past_the_start_up_grace_is_a_warning(
    db: Database, chunker: TokenChunker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, embedder_outage.__name__)
    await seed_documents(db, chunker, 1)
    async with EmbeddingClient(f"http://127.0.0.1:{free_port()}/v1", timeout_s=30) as client:
        worker = EmbeddingWorker(db, client, EmbeddingWorkerConfig.model_validate(FAST), BackgroundLoops())
        # a grace already over: the app has been up longer than the embedder may take to start
        worker.outage = EmbedderOutage(0.05, 0.2, startup_grace_s=0.0)
        async with worker:

            async def refused_thrice() -> bool:
                return worker.outage.failed_calls >= 3

            await wait_until(refused_thrice, "three refused calls")
    warnings = [m for level, m in _outage_records(caplog) if level >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("embedding service unavailable since the app started: ")


async def test_an_embedder_that_answered_and_went_away_is_a_warning_within_the_grace(
    db: Database, chunker: TokenChunker, stoppable_embedder: EmbedderProgram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, embedder_outage.__name__)
    await seed_documents(db, chunker, 1)
    async with EmbeddingClient(stoppable_embedder.url, timeout_s=30) as client:
        worker = EmbeddingWorker(db, client, EmbeddingWorkerConfig.model_validate(FAST), BackgroundLoops())
        async with worker:
            await wait_until(lambda: _queue_done(db), "the first documents embedded")
            stoppable_embedder.stop()
            await seed_documents(db, chunker, 1, prefix="later")
            worker.wake()

            async def refused() -> bool:
                return worker.outage.failed_calls >= 1

            await wait_until(refused, "a call refused by the stopped service")
    warnings = [m for level, m in _outage_records(caplog) if level >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("embedding service unavailable: "), warnings
