"""The app the isolation runs play against: the real engine in-process, enabled, with the `test/block` loader."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))

from access_race_kit import use_test_loaders
from contract_kit import contract_config, make_settings, running_app, signed_headers
from quart.typing import TestClientProtocol as Client

from quart_app import create_app
from quart_app.engine import ENGINE_EXTENSION, Engine


@asynccontextmanager
async def serve_isolated(
    storage: Path, dsn: str, embedder_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Client, Engine]]:
    """Two parsers (one may be held mid-parse by a `test/block` part) and two /loadSources at a time, so further
    loads wait at the parser gate while changes arrive."""
    use_test_loaders(monkeypatch)
    ingest = {"parse_workers": 2, "max_part_mb": 2, "max_request_mb": 8, "concurrent_requests": 2}
    app = create_app(make_settings(storage, dsn, contract_config(embedder_url, ingest=ingest)))
    # the engine opens a parse pool, the database and the models: Quart's 6 s default is short on a busy machine
    async with running_app(app):
        client = app.test_client()
        response = await client.put("/enabled", query_string={"enabled": "1"}, headers=signed_headers())
        assert response.status_code == 200
        yield client, app.extensions[ENGINE_EXTENSION]
