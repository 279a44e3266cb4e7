"""A chunk another transaction holds at the moment its batch is written (a delete, or a concurrent claim whose scan
locked it) is written as soon as that transaction lets go, not left to its lease: the quality benchmark's queue sat
still for 10 minutes that way, with every vector already at hand."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import psycopg
from engine_kit import rows, scalar, seed_documents

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database

HOLD_S = 1.0


class HoldsAChunkWhileEmbedding:
    """The real embedding client; during its first request another session locks the batch's first chunk and keeps
    it for HOLD_S, so the worker's write meets a row it cannot take."""

    def __init__(self, client: EmbeddingClient, blocker: psycopg.AsyncConnection[object]) -> None:
        self._client = client
        self._blocker = blocker
        self.released = asyncio.Event()
        self._holder: asyncio.Task[None] | None = None

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        vectors = await self._client.embed(texts, input_type)
        if self._holder is None:
            await self._blocker.execute("BEGIN")
            await self._blocker.execute("SELECT 1 FROM chunks WHERE id = (SELECT min(id) FROM chunks) FOR UPDATE")
            self._holder = asyncio.create_task(self._release_later())
        return vectors

    async def _release_later(self) -> None:
        await asyncio.sleep(HOLD_S)
        await self._blocker.execute("COMMIT")
        self.released.set()


async def test_a_chunk_held_by_another_transaction_is_written_once_it_lets_go(
    db: Database, fresh_dsn: str, chunker: TokenChunker, embedding_client: EmbeddingClient
) -> None:
    total = await seed_documents(db, chunker, 2)
    config = EmbeddingWorkerConfig.model_validate(
        {"workers": 1, "batch_tokens": 100_000, "lease_s": 600, "idle_poll_s": 0.5}
    )
    async with await psycopg.AsyncConnection.connect(fresh_dsn, autocommit=True) as blocker:
        embedder = HoldsAChunkWhileEmbedding(embedding_client, blocker)
        worker = EmbeddingWorker(db, embedder, config)
        started = time.monotonic()
        await worker.start()
        try:
            while await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'embedded'") < total:
                # before: the held chunk kept its 600 s lease and the queue waited for it
                assert time.monotonic() - started < 30, await rows(
                    db, "SELECT id, embed_state, lease_until FROM chunks WHERE embed_state <> 'embedded'"
                )
                await asyncio.sleep(0.1)
        finally:
            await worker.close()
    assert embedder.released.is_set() and worker.counters.chunks_embedded == total
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE lease_token IS NOT NULL") == 0
