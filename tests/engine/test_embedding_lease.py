"""The embedding lease under a slow embedding request: renewed while the request runs, and a worker whose batch was
taken over drops it (the real store and the real MiniLM embedder, held back by the test)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Literal

import numpy as np
from engine_kit import PROSE, rows, scalar

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_indexed
from quart_app.store.queue_store import claim_batch, complete


class HeldEmbedder:
    """The real embedding client behind a gate: a request waits for `release` (a request slower than the lease)."""

    def __init__(self, client: EmbeddingClient) -> None:
        self._client = client
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        self.calls += 1
        self.entered.set()
        await self.release.wait()
        return await self._client.embed(texts, input_type)


def _config(lease_s: float) -> EmbeddingWorkerConfig:
    return EmbeddingWorkerConfig.model_validate(
        {"workers": 1, "batch_tokens": 100_000, "lease_s": lease_s, "idle_poll_s": 60.0}
    )


async def _seed(db: Database, chunker: TokenChunker) -> int:
    text = PROSE.format(topic="leases")
    chunks = [
        ChunkRecord(i, c.text, c.start, c.token_count, hashlib.sha256(c.text.encode()).digest())
        for i, c in enumerate(chunker.split(text, "text/plain"))
    ]
    doc = DocumentRecord("files__default: 1", "files__default", "t", "text/plain", 1, b"h" * 32, 1)
    async with db.connection() as conn:
        return (await write_indexed(conn, doc, chunks, ["alice"])).chunks


async def _wait_until_past(db: Database, moment: object) -> None:
    """Until the database clock is a second past `moment` (leases are measured on that clock)."""
    await asyncio.sleep(float(await scalar(db, "SELECT extract(epoch FROM %s + interval '1 second' - now())", moment)))
    assert await scalar(db, "SELECT now() > %s + interval '1 second'", moment) is True


async def test_a_request_slower_than_the_lease_keeps_its_batch_and_embeds_it_once(
    db: Database, chunker: TokenChunker, embedding_client: EmbeddingClient
) -> None:
    total = await _seed(db, chunker)
    held = HeldEmbedder(embedding_client)
    slow = EmbeddingWorker(db, held, _config(lease_s=3.0))
    other = EmbeddingWorker(db, embedding_client, _config(lease_s=3.0))
    request = asyncio.create_task(slow.run_once())
    await asyncio.wait_for(held.entered.wait(), 30)
    first_lease_end = await scalar(db, "SELECT max(lease_until) FROM chunks")
    await _wait_until_past(db, first_lease_end)
    # the first lease is over, but it was renewed: nothing is due for another worker
    assert await other.run_once() is None
    assert await scalar(db, "SELECT min(lease_until) > now() FROM chunks") is True
    held.release.set()
    assert await asyncio.wait_for(request, 60) == total
    assert other.counters.texts_sent == 0 and slow.counters.leases_lost == 0
    assert held.calls == 1
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'embedded'") == total


async def test_a_worker_whose_batch_was_taken_over_drops_its_request_and_the_newer_vectors_stay(
    db: Database, chunker: TokenChunker, embedding_client: EmbeddingClient
) -> None:
    total = await _seed(db, chunker)
    held = HeldEmbedder(embedding_client)
    slow = EmbeddingWorker(db, held, _config(lease_s=1.5))
    request = asyncio.create_task(slow.run_once())
    await asyncio.wait_for(held.entered.wait(), 30)
    async with db.connection() as conn:
        # the lease ran out (say the renewal could not reach the database) and another worker claimed the batch;
        # in one transaction, so no renewal lands in between
        async with conn.transaction():
            await conn.execute("UPDATE chunks SET lease_until = now() - interval '1 second'")
            takeover = await claim_batch(conn, 100_000, 600.0)
        assert len(takeover.chunks) == total
        texts = {c.text_hash: c.text for c in takeover.chunks}
        computed = await embedding_client.embed(list(texts.values()), "passage")
        vectors = {h: np.asarray(v, dtype=np.float32) for h, v in zip(texts, computed, strict=True)}
        assert await complete(conn, takeover, vectors, list(texts)) == total
    newer = await rows(db, "SELECT id, embedded_at FROM chunks ORDER BY id")
    # the slow worker learns at its next renewal that the batch is gone and stops waiting for its request
    assert await asyncio.wait_for(request, 30) == 0
    assert slow.counters.leases_lost == 1 and slow.counters.chunks_embedded == 0
    assert held.calls == 1 and not held.release.is_set()
    assert await rows(db, "SELECT id, embedded_at FROM chunks ORDER BY id") == newer
