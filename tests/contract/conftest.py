"""Contract fixtures: the real embedder program, the real engine on a fresh database, the app in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from contract_kit import contract_config, make_settings, running_app, signed_headers
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_app import create_app
from quart_app.app_settings import AppSettings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path, fresh_dsn: str, embedder_url: str) -> AppSettings:
    settings: AppSettings = make_settings(tmp_path / "storage", fresh_dsn, contract_config(embedder_url))
    return settings


@pytest.fixture
async def app(settings: AppSettings) -> AsyncIterator[Quart]:
    """The real app with the real engine, lifespan run (before_serving/after_serving) by running_app()."""
    quart_app = create_app(settings)
    async with running_app(quart_app):
        yield quart_app


@pytest.fixture
async def client(app: Quart) -> Client:
    """A test client of an app already enabled by AppAPI (PUT /enabled?enabled=1, signed)."""
    test_client = app.test_client()
    response = await test_client.put("/enabled", query_string={"enabled": "1"}, headers=signed_headers())
    assert response.status_code == 200
    return test_client
