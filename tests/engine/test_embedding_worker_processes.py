"""Two embedding worker processes on one database share its queue: each chunk embedded once, none left behind."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from async_wait import wait_until
from embedding_service_fake import EmbeddingServiceFake, pool_index, vector_pool
from engine_kit import rows, scalar, text_hash

from quart_app.chunking.chunker import TokenChunker
from quart_app.store import Database
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_indexed

HERE = Path(__file__).resolve().parent
DOCUMENTS = 30


@pytest.fixture
def fake() -> Iterator[EmbeddingServiceFake]:
    # room for both workers at once, so overlapping requests show that both took part
    with EmbeddingServiceFake(dimension=384, latency_s=0.05, capacity=2) as service:
        yield service


async def _listening_worker(dsn: str, url: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "worker_process.py"), dsn, url, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), 60) == b"worker listening\n"
    return process


async def _queue_unique_chunks(db: Database, chunker: TokenChunker) -> list[str]:
    """Documents whose chunks all differ (a text embedded twice is then double work), queued in one commit."""
    texts: list[str] = []
    async with db.connection() as conn, conn.transaction():
        for n in range(DOCUMENTS):
            text = "\n\n".join(
                f"Paragraph {p} of document {n} says that the meeting about budget item {n * 10 + p} moved to"
                " the small room on the second floor, next to the kitchen, and that everyone should bring notes."
                for p in range(6)
            )
            chunks = [
                ChunkRecord(i, c.text, c.start, c.token_count, text_hash(c.text))
                for i, c in enumerate(chunker.split(text, "text/plain"))
            ]
            texts += [c.text for c in chunks]
            doc = DocumentRecord(f"files__default: {n}", "files__default", "t", "text/plain", 1, text_hash(text), 1)
            await write_indexed(conn, doc, chunks, ["alice"])
    assert len(set(texts)) == len(texts)
    return texts


async def test_two_worker_processes_embed_each_chunk_once_and_lose_none(
    fresh_dsn: str, db: Database, chunker: TokenChunker, fake: EmbeddingServiceFake
) -> None:
    workers: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(2):
            workers.append(await _listening_worker(fresh_dsn, fake.url))
        texts = await _queue_unique_chunks(db, chunker)

        async def drained() -> bool:
            return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0)

        await wait_until(drained, "the two workers to drain the queue", timeout_s=120)
    finally:
        for worker in workers:
            worker.kill()
            await worker.wait()
    twice = sum(1 for count in fake.texts.values() if count > 1)
    assert (twice, len(set(texts) - set(fake.texts))) == (0, 0), "chunk texts embedded twice, and never"
    assert fake.texts == Counter(texts)
    assert fake.peak_in_flight == 2, "the two workers never embedded at the same time"
    stored = await rows(db, "SELECT text, embedding, embed_state, attempts FROM chunks")
    assert len(stored) == len(texts)
    pool = vector_pool(384)
    for text, vector, state, attempts in stored:
        assert (state, attempts) == ("embedded", 0)
        np.testing.assert_allclose(vector.to_numpy(), pool[pool_index(text)], atol=1e-6)
