"""What the access-race tests share: an app on the real engine whose parser the test can hold mid-parse, and the
routes they call (loads, changes, whether a user reaches a source)."""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from async_wait import until
from contract_kit import SourcePart, contract_config, make_settings, put_sources, signed_headers
from quart import Quart
from quart.testing.app import TestApp as LifespanApp
from quart.typing import TestClientProtocol as Client

import quart_app.loaders
from quart_app import create_app
from quart_app.app_settings import AppSettings
from quart_app.loaders import registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "loaders"))

from faulty_loaders import FAULTY_LOADERS

TEXT = "Notes about the {word} project: the {word} budget and the {word} timeline are on track."


def use_test_loaders(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's real parse pool plus the test loaders (`test/block` parses until the test releases it), their
    types readable for the routes too: a content provider's item of a type no loader reads is parsed as text."""
    pool = functools.partial(quart_app.loaders.ParsePool, extra_loaders=FAULTY_LOADERS)
    monkeypatch.setattr(quart_app.loaders, "ParsePool", pool)
    monkeypatch.setattr(registry, "SUPPORTED_MIMETYPES", registry.SUPPORTED_MIMETYPES | FAULTY_LOADERS.keys())


@pytest.fixture
def blocking_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    use_test_loaders(monkeypatch)


def race_settings(tmp_path: Path, dsn: str, embedder_url: str, **ingest: Any) -> AppSettings:
    limits = {"parse_workers": 1, "max_part_mb": 2, "max_request_mb": 8, "concurrent_requests": 1, **ingest}
    settings: AppSettings = make_settings(tmp_path / "storage", dsn, contract_config(embedder_url, ingest=limits))
    return settings


@asynccontextmanager
async def serve(settings: AppSettings) -> AsyncIterator[tuple[Quart, Client]]:
    app = create_app(settings)
    # the engine opens a parse pool, the database and the models: Quart's 6 s default is short on a busy machine
    async with LifespanApp(app, startup_timeout=120, shutdown_timeout=60):
        client = app.test_client()
        response = await client.put("/enabled", query_string={"enabled": "1"}, headers=signed_headers())
        assert response.status_code == 200
        yield app, client


class HeldParse:
    """A `test/block` part whose parse starts, then waits until `release()`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        directory.chmod(0o777)  # the parser writes `started` as ccb_parser
        self.directory = directory

    def part(self, source_id: str, users: list[str], word: str, provider: str = "files__default") -> SourcePart:
        content = f"{self.directory}\n{TEXT.format(word=word)}".encode()
        return SourcePart(source_id, content, user_ids=users, mimetype="test/block", provider=provider)

    async def started(self) -> None:
        await until(lambda: (self.directory / "started").exists(), what="the parse to start")

    def release(self) -> None:
        (self.directory / "release").touch()


async def load(client: Client, parts: list[SourcePart]) -> tuple[int, Any]:
    response = await put_sources(client, parts)
    return response.status_code, await response.get_json()


async def post(client: Client, path: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    response = await client.post(path, json=body, headers=signed_headers())
    return response.status_code, await response.get_json(), dict(response.headers)


async def reaches(client: Client, user: str, source_id: str, word: str) -> bool:
    """Whether the user reaches the source (its own marker word) through /docSearch or /query."""
    body = {"userId": user, "query": f"{word} project budget"}
    response = await client.post("/docSearch", json=body, headers=signed_headers(user))
    assert response.status_code == 200
    searched = source_id in {hit["source_id"] for hit in await response.get_json()}
    response = await client.post("/query", json=body, headers=signed_headers(user))
    answer = await response.get_json()
    if response.status_code != 200:
        assert response.status_code == 400 and "No documents retrieved" in answer["error"], answer
        return searched
    quoted = source_id in answer["sources"]
    assert (word in answer["output"]) == quoted, f"{user}'s answer and its sources disagree on {word}: {answer}"
    return searched or quoted
