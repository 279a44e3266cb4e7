"""The embedding worker against the real store and the real MiniLM embedder program."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from async_wait import wait_until
from engine_kit import PROSE, free_port, rows, scalar, seed_documents, write_source

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.chunking.chunker import TokenChunker
from quart_app.loaders import ParsePool
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.runtimes.errors import EmbeddingServiceError
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.services.errors import WorkerClosedError
from quart_app.services.ingest import IngestService
from quart_app.store import Database

HERE = Path(__file__).resolve().parent


def _config(**overrides: object) -> EmbeddingWorkerConfig:
    values: dict[str, object] = {"workers": 1, "batch_tokens": 512, "lease_s": 30.0, "idle_poll_s": 60.0}
    values.update(overrides)
    return EmbeddingWorkerConfig.model_validate(values)


async def test_drain_embeds_every_chunk_with_the_model_vectors(
    db: Database, chunker: TokenChunker, embedding_client: EmbeddingClient
) -> None:
    total = await seed_documents(db, chunker, 4)
    worker = EmbeddingWorker(db, embedding_client, _config())
    assert await worker.drain() == total
    assert (
        await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'embedded' AND embedding IS NOT NULL")
        == total
    )
    text, vector = (await rows(db, "SELECT text, embedding FROM chunks ORDER BY id LIMIT 1"))[0]
    direct = np.asarray((await embedding_client.embed([str(text)], "passage"))[0], dtype=np.float32)
    assert float(np.dot(direct, vector.to_numpy())) == pytest.approx(1.0, abs=1e-5)
    # identical paragraphs in different documents are embedded once
    unique = await scalar(db, "SELECT count(DISTINCT text_hash) FROM chunks")
    assert worker.counters.texts_sent == unique
    assert unique < total
    assert await scalar(db, "SELECT count(*) FROM embedding_cache") == unique


async def test_cached_text_skips_the_embedder_on_the_next_ingest(
    db: Database, chunker: TokenChunker, embedding_client: EmbeddingClient, ingest: IngestService, tmp_path: Path
) -> None:
    await ingest.ingest([write_source(tmp_path, "files__default: 1", PROSE.format(topic="cache"), ["alice"])])
    worker = EmbeddingWorker(db, embedding_client, _config())
    await worker.drain()
    sent = worker.counters.texts_sent
    # same text under another source id: vectors come from the cache at ingest, nothing is queued
    await ingest.ingest([write_source(tmp_path, "files__default: 2", PROSE.format(topic="cache"), ["bob"])])
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0
    assert await worker.drain() == 0
    assert worker.counters.texts_sent == sent


async def test_started_worker_wakes_on_ingest_and_stops_cleanly(
    db: Database, embedding_client: EmbeddingClient, parse_pool: ParsePool, tmp_path: Path
) -> None:
    worker = EmbeddingWorker(db, embedding_client, _config(workers=2, idle_poll_s=600.0))
    service = IngestService(db, parse_pool, on_chunks_queued=worker.wake)
    async with worker:
        await asyncio.wait_for(worker.idle.wait(), 30)  # a loop found the queue empty and sleeps up to 600 s
        await service.ingest([write_source(tmp_path, "files__default: 5", PROSE.format(topic="wake"), ["alice"])])

        async def emptied() -> bool:
            return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0)

        await wait_until(emptied, "the woken worker to embed the queued chunks", timeout_s=30)
        assert worker.running
    assert not worker.running
    with pytest.raises(WorkerClosedError, match="the embedding worker was closed; create a new EmbeddingWorker"):
        await worker.start()


async def test_notify_from_another_process_wakes_an_idle_worker(
    fresh_dsn: str, db: Database, chunker: TokenChunker, embedding_client: EmbeddingClient
) -> None:
    worker = EmbeddingWorker(db, embedding_client, _config(idle_poll_s=600.0))
    async with worker:
        await worker.wait_listening()
        await asyncio.wait_for(worker.idle.wait(), 30)  # the loop found the queue empty and waits up to 600 s
        other = Database(fresh_dsn, min_size=1, max_size=1)  # stands for another app process: no wake() call
        async with other:
            total = await seed_documents(other, chunker, 1)

        async def embedded() -> bool:
            return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'embedded'") == total)

        await wait_until(embedded, "the NOTIFY to wake the worker and every chunk embedded", timeout_s=30)


async def test_an_unreachable_embedder_is_an_outage_not_an_attempt_of_the_chunks(
    db: Database, chunker: TokenChunker
) -> None:
    await seed_documents(db, chunker, 1)
    # one attempt would fail a chunk at once under a rule that counted outages
    config = _config(max_attempts=1, outage_backoff_base_s=100.0, outage_backoff_max_s=150.0)
    async with EmbeddingClient(f"http://127.0.0.1:{free_port()}/v1", timeout_s=5) as dead:
        worker = EmbeddingWorker(db, dead, config)
        waits = []
        for _call in range(3):
            with pytest.raises(EmbeddingServiceError, match=r"^cannot reach the embedding service at ") as raised:
                await worker.run_once()
            assert raised.value.unavailable
            waits.append(worker.outage.wait_s())
    assert waits[0] == pytest.approx(100.0, abs=2)
    assert waits[1:] == [pytest.approx(150.0, abs=2)] * 2  # 200 s capped at 150
    # each batch was given back untouched: unleased, due now, no attempt and no error recorded
    states = await rows(
        db,
        "SELECT DISTINCT embed_state, attempts, last_error, lease_token IS NULL, next_attempt_at <= now() FROM chunks",
    )
    assert states == [("queued", 0, None, True, True)]
    assert worker.outage.failed_calls == 3 and worker.outage.ongoing


async def test_fatal_error_fails_only_the_bad_chunk(
    db: Database, chunker: TokenChunker, embedding_client: EmbeddingClient
) -> None:
    total = await seed_documents(db, chunker, 1)
    async with db.connection() as conn:
        # an empty input is refused by the embedder with 400: a fatal, per-input error
        await conn.execute(
            "INSERT INTO chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash)"
            " VALUES ('files__default: 0', 1, 99, '', 0, 1, '\\x00')"
        )
    worker = EmbeddingWorker(db, embedding_client, _config(batch_tokens=100_000))
    assert await worker.drain() == total
    failed = await rows(db, "SELECT ordinal, attempts, last_error FROM chunks WHERE embed_state = 'failed'")
    assert len(failed) == 1 and failed[0][0] == 99 and failed[0][1] == 1
    assert "answered 400" in str(failed[0][2])
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'embedded'") == total


async def test_two_workers_share_the_queue_and_write_each_chunk_once(
    fresh_dsn: str, db: Database, chunker: TokenChunker, embedder_url: str
) -> None:
    total = await seed_documents(db, chunker, 12)
    others = [Database(fresh_dsn, min_size=1, max_size=2) for _ in range(2)]
    clients = [EmbeddingClient(embedder_url, timeout_s=60) for _ in range(2)]
    try:
        for other in others:
            await other.open(timeout_s=10)
        workers = [EmbeddingWorker(d, c, _config(batch_tokens=128)) for d, c in zip(others, clients, strict=True)]
        written = await asyncio.gather(*(w.drain() for w in workers))
    finally:
        for other in others:
            await other.close()
        for client in clients:
            await client.aclose()
    assert sum(written) == total
    assert all(n > 0 for n in written), written
    assert sum(w.counters.chunks_embedded for w in workers) == total
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'embedded'") == total


async def test_worker_killed_mid_batch_loses_nothing_and_embeds_each_chunk_once(
    fresh_dsn: str, db: Database, chunker: TokenChunker, embedder_url: str, embedding_client: EmbeddingClient
) -> None:
    total = await seed_documents(db, chunker, 60)
    lease_s = 2.0
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "worker_process.py"),
        fresh_dsn,
        embedder_url,
        f"--lease-s={lease_s}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            embedded = await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'embedded'")
            leased = await scalar(db, "SELECT count(*) FROM chunks WHERE lease_token IS NOT NULL")
            if int(embedded) >= 10 and int(leased) > 0:
                break
            assert process.returncode is None, "the worker process exited early"
            assert time.monotonic() < deadline, "the worker process embedded nothing"
            await asyncio.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    before: dict[int, object] = dict(
        await rows(db, "SELECT id, embedded_at FROM chunks WHERE embed_state = 'embedded'")
    )
    assert 0 < len(before) < total, "the kill must land mid-queue"
    worker = EmbeddingWorker(db, embedding_client, _config(batch_tokens=128, lease_s=lease_s))
    deadline = time.monotonic() + 60
    while await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state <> 'embedded'") != 0:
        await worker.drain()  # the killed worker's leased batch comes back once its lease expires
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    after: dict[int, object] = dict(await rows(db, "SELECT id, embedded_at FROM chunks"))
    assert len(after) == total
    assert {k: after[k] for k in before} == before, "chunks embedded before the kill were embedded again"
    assert worker.counters.chunks_embedded == total - len(before)
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE embedding IS NULL") == 0


async def test_model_change_re_embeds_everything_once(
    db: Database, chunker: TokenChunker, embedding_client: EmbeddingClient
) -> None:
    total = await seed_documents(db, chunker, 2)
    first = EmbeddingWorker(db, embedding_client, _config())
    assert await first.drain() == total
    result = await db.migrate("minilm-renamed", 384)  # a different model id, same dimension: vectors not mixed
    assert result.model_changed
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued' AND embedding IS NULL") == total
    second = EmbeddingWorker(db, embedding_client, _config())
    assert await second.drain() == total
    assert second.counters.cache_hits == 0  # the old model's cache was cleared
    assert second.counters.texts_sent == await scalar(db, "SELECT count(DISTINCT text_hash) FROM chunks")
