"""What the cross-lingual leg's tests share: its backfill loop running over a database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from appliance.retrieval_config import CrossLingualConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.services.cross_lingual import CrossLingualIndex, MultilingualEmbedder
from quart_app.store.cross_lingual_store import bind_model
from quart_app.store.database import Database


class BoundModel(MultilingualEmbedder, Protocol):
    """A model the database can be bound to (CrossLingualModel, or a test's wrapper of it)."""

    @property
    def dimension(self) -> int: ...


@asynccontextmanager
async def running_backfill(db: Database, model: BoundModel) -> AsyncIterator[tuple[CrossLingualIndex, BackgroundLoops]]:
    """The database bound to `model`, and a CrossLingualIndex (one thread) whose backfill loop runs until the block
    ends."""
    async with db.connection() as conn:
        await bind_model(conn, model.model_id, model.dimension)
    index = CrossLingualIndex(db, model, CrossLingualConfig(threads=1))
    loops = BackgroundLoops()
    loops.start(CrossLingualIndex.LOOP_NAME, index.run)
    try:
        yield index, loops
    finally:
        await loops.close()
