"""Issue 9 finding 5: an access change or delete that arrives while a load of the same source is waiting or being
parsed is not undone by that load (push routes, on the real engine with a parser the test holds mid-parse)."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from contract_kit import SourcePart, contract_config, guzzle_multipart, make_settings, signed_headers
from quart import Quart
from quart.testing.app import TestApp as LifespanApp
from quart.typing import TestClientProtocol as Client

import quart_app.loaders
from quart_app import create_app
from quart_app.app_settings import AppSettings
from quart_app.engine import ENGINE_EXTENSION, Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "loaders"))

from faulty_loaders import FAULTY_LOADERS

TEXT = "Notes about the {word} project: the {word} budget and the {word} timeline are on track."


@pytest.fixture
def blocking_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's real parse pool, plus the test loaders (`test/block` parses until the test releases it)."""
    pool = functools.partial(quart_app.loaders.ParsePool, extra_loaders=FAULTY_LOADERS)
    monkeypatch.setattr(quart_app.loaders, "ParsePool", pool)


def _settings(tmp_path: Path, dsn: str, embedder_url: str, **ingest: Any) -> AppSettings:
    limits = {"parse_workers": 1, "max_part_mb": 2, "max_request_mb": 8, "concurrent_requests": 1, **ingest}
    return make_settings(tmp_path / "storage", dsn, contract_config(embedder_url, ingest=limits))


@asynccontextmanager
async def _serve(settings: AppSettings) -> AsyncIterator[tuple[Quart, Client]]:
    app = create_app(settings)
    # the engine opens a parse pool, the database and the models: Quart's 6 s default is short on a busy machine
    async with LifespanApp(app, startup_timeout=120, shutdown_timeout=60):
        client = app.test_client()
        response = await client.put("/enabled", query_string={"enabled": "1"}, headers=signed_headers())
        assert response.status_code == 200
        yield app, client


@pytest.fixture
async def served(
    blocking_parser: None, tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> AsyncIterator[tuple[Quart, Client]]:
    """One /loadSources at a time (a second one waits at the parser gate), changes wait up to 30 s."""
    async with _serve(_settings(tmp_path, fresh_dsn, embedder_url)) as pair:
        yield pair


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
        await _until(lambda: (self.directory / "started").exists(), "the parse to start")

    def release(self) -> None:
        (self.directory / "release").touch()


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


async def _load(client: Client, parts: list[SourcePart]) -> tuple[int, Any]:
    body, content_type = guzzle_multipart(parts)
    response = await client.put("/loadSources", data=body, headers={**signed_headers(), "Content-Type": content_type})
    return response.status_code, await response.get_json()


async def _post(client: Client, path: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    response = await client.post(path, json=body, headers=signed_headers())
    return response.status_code, await response.get_json(), dict(response.headers)


async def _reaches(client: Client, user: str, source_id: str, word: str) -> bool:
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


def _answered_or_waiting(change: asyncio.Task[Any], app: Quart) -> bool:
    return change.done() or _engine(app).order.snapshot()["changes_waiting"] == 1


def _engine(app: Quart) -> Engine:
    opened: Engine = app.extensions[ENGINE_EXTENSION]
    return opened


# (route, body, who still reads the source afterwards); each case has its own source, users and provider
CASES: list[tuple[str, str, dict[str, Any], set[str]]] = [
    ("deny", "/updateAccess", {"op": "deny", "userIds": ["bob1"], "sourceId": "files__default: 1"}, {"alice1"}),
    ("declare", "/updateAccessDeclarative", {"userIds": ["alice2"], "sourceId": "files__default: 2"}, {"alice2"}),
    ("deny provider", "/updateAccessProvider", {"op": "deny", "userIds": ["bob3"], "providerId": "p3__x"}, {"alice3"}),
    ("delete user", "/deleteUser", {"userId": "bob4"}, {"alice4"}),
    ("delete sources", "/deleteSources", {"sourceIds": ["files__default: 5"]}, set()),
    ("delete provider", "/deleteProvider", {"providerKey": "p6__x"}, set()),
]


@pytest.mark.parametrize("indexed_before", [False, True], ids=["new source", "re-indexed source"])
async def test_a_change_arriving_during_the_parse_wins_over_the_load(
    served: tuple[Quart, Client], parser_gates: Path, indexed_before: bool
) -> None:
    app, client = served
    for n, (case, path, body, readers) in enumerate(CASES, start=1):
        source_id = f"{'files__default' if n not in (3, 6) else f'p{n}__x'}: {n}"
        provider, users, word = source_id.split(":")[0], [f"alice{n}", f"bob{n}"], f"quokka{n}x"
        if indexed_before:
            status, answer = await _load(client, [SourcePart(source_id, b"an older version", users, provider=provider)])
            assert status == 200 and answer["loaded_sources"] == [source_id], (case, answer)
        held = HeldParse(parser_gates / f"gate{n}")
        loading = asyncio.create_task(_load(client, [held.part(source_id, users, word, provider)]))
        await held.started()
        change = asyncio.create_task(_post(client, path, body))
        # the change either committed already (the race) or waits for the load
        await _until(functools.partial(_answered_or_waiting, change, app), "the change")
        held.release()
        status, answer = await loading
        assert status == 200 and answer["loaded_sources"] == [source_id], (case, answer)
        assert (await change)[0] == 200, case
        for user in users:
            reaches = await _reaches(client, user, source_id, word)
            assert reaches == (user in readers), f"{case}: does {user} reach {source_id} after both finished?"


async def test_a_load_waiting_for_a_parser_slot_when_a_change_commits_is_retried_not_written(
    served: tuple[Quart, Client], parser_gates: Path
) -> None:
    app, client = served
    held = HeldParse(parser_gates / "gate")
    first = asyncio.create_task(_load(client, [held.part("files__default: 10", ["alice"], "wombat10x")]))
    await held.started()
    # concurrent_requests = 1: this one waits at the gate with bob still listed
    waiting = asyncio.create_task(
        _load(client, [SourcePart("files__default: 11", TEXT.format(word="wombat11x").encode(), ["alice", "bob"])])
    )
    await _until(lambda: _engine(app).order.snapshot()["loads_open"] == 2, "the second load to arrive")
    deny = {"op": "deny", "userIds": ["bob"], "sourceId": "files__default: 11"}
    assert (await _post(client, "/updateAccess", deny))[0] == 200
    held.release()
    assert (await first)[0] == 200
    status, answer = await waiting
    assert status == 200 and answer == {"loaded_sources": [], "sources_to_retry": ["files__default: 11"]}
    assert not await _reaches(client, "bob", "files__default: 11", "wombat11x")
    # the PHP app sends it again with the readers it lists now
    status, answer = await _load(
        client, [SourcePart("files__default: 11", TEXT.format(word="wombat11x").encode(), ["alice"])]
    )
    assert status == 200 and answer["loaded_sources"] == ["files__default: 11"]
    assert await _reaches(client, "alice", "files__default: 11", "wombat11x")
    assert not await _reaches(client, "bob", "files__default: 11", "wombat11x")


async def test_a_change_that_waits_too_long_answers_503_with_cc_retry(
    blocking_parser: None, tmp_path: Path, parser_gates: Path, fresh_dsn: str, embedder_url: str
) -> None:
    async with _serve(_settings(tmp_path, fresh_dsn, embedder_url, access_wait_s=0.2)) as (_app, client):
        held = HeldParse(parser_gates / "gate")
        loading = asyncio.create_task(_load(client, [held.part("files__default: 20", ["alice", "bob"], "numbat20x")]))
        await held.started()
        deny = {"op": "deny", "userIds": ["bob"], "sourceId": "files__default: 20"}
        status, answer, headers = await _post(client, "/updateAccess", deny)
        assert status == 503 and headers["cc-retry"] == "true"
        assert answer == {
            "error": "source 'files__default: 20' still held by an ingest or an earlier change after waiting 0.2 s;"
            " retry in some time (or raise ingest.access_wait_s)"
        }
        held.release()
        assert (await loading)[0] == 200
        # the PHP app keeps the action queued on 503 and sends it again
        assert (await _post(client, "/updateAccess", deny))[0] == 200
        assert not await _reaches(client, "bob", "files__default: 20", "numbat20x")
        assert await _reaches(client, "alice", "files__default: 20", "numbat20x")
