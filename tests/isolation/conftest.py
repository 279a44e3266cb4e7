"""Isolation fixtures: the app under test and the run's seed (a failing run prints it for a replay)."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from isolation_app import serve_isolated
from quart.typing import TestClientProtocol as Client

from quart_app.engine import Engine

SEED_VARIABLE = "CCB_ISOLATION_SEED"


@pytest.fixture
def isolation_seed() -> int:
    return int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(1, 2**31))


@pytest.fixture
async def isolated_app(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Client, Engine]]:
    async with serve_isolated(tmp_path / "storage", fresh_dsn, embedder_url, monkeypatch) as served:
        yield served
