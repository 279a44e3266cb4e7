"""Issue 9 finding 5: an access change or delete that arrives while a load of the same source is waiting or being
parsed is not undone by that load (push routes, on the real engine with a parser the test holds mid-parse)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from access_race_kit import TEXT, HeldParse, blocking_parser, load, post, race_settings, reaches, serve
from async_wait import until
from contract_kit import SourcePart
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_app.engine import ENGINE_EXTENSION, Engine

__all__ = ["blocking_parser"]  # a fixture the tests here use


@pytest.fixture
async def served(
    blocking_parser: None, tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> AsyncIterator[tuple[Quart, Client]]:
    """One /loadSources at a time (a second one waits at the parser gate), changes wait up to 30 s."""
    async with serve(race_settings(tmp_path, fresh_dsn, embedder_url)) as pair:
        yield pair


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
            status, answer = await load(client, [SourcePart(source_id, b"an older version", users, provider=provider)])
            assert status == 200 and answer["loaded_sources"] == [source_id], (case, answer)
        held = HeldParse(parser_gates / f"gate{n}")
        loading = asyncio.create_task(load(client, [held.part(source_id, users, word, provider)]))
        await held.started()
        change = asyncio.create_task(post(client, path, body))
        # the change either committed already (the race) or waits for the load
        await until(functools.partial(_answered_or_waiting, change, app), what="the change")
        held.release()
        status, answer = await loading
        assert status == 200 and answer["loaded_sources"] == [source_id], (case, answer)
        assert (await change)[0] == 200, case
        for user in users:
            reached = await reaches(client, user, source_id, word)
            assert reached == (user in readers), f"{case}: does {user} reach {source_id} after both finished?"


async def test_a_load_waiting_for_a_parser_slot_when_a_change_commits_is_retried_not_written(
    served: tuple[Quart, Client], parser_gates: Path
) -> None:
    app, client = served
    held = HeldParse(parser_gates / "gate")
    first = asyncio.create_task(load(client, [held.part("files__default: 10", ["alice"], "wombat10x")]))
    await held.started()
    # concurrent_requests = 1: this one waits at the gate with bob still listed
    waiting = asyncio.create_task(
        load(client, [SourcePart("files__default: 11", TEXT.format(word="wombat11x").encode(), ["alice", "bob"])])
    )
    await until(lambda: _engine(app).order.snapshot()["loads_open"] == 2, what="the second load to arrive")
    deny = {"op": "deny", "userIds": ["bob"], "sourceId": "files__default: 11"}
    assert (await post(client, "/updateAccess", deny))[0] == 200
    held.release()
    assert (await first)[0] == 200
    status, answer = await waiting
    assert status == 200 and answer == {"loaded_sources": [], "sources_to_retry": ["files__default: 11"]}
    assert not await reaches(client, "bob", "files__default: 11", "wombat11x")
    # the PHP app sends it again with the readers it lists now
    status, answer = await load(
        client, [SourcePart("files__default: 11", TEXT.format(word="wombat11x").encode(), ["alice"])]
    )
    assert status == 200 and answer["loaded_sources"] == ["files__default: 11"]
    assert await reaches(client, "alice", "files__default: 11", "wombat11x")
    assert not await reaches(client, "bob", "files__default: 11", "wombat11x")


async def test_a_change_that_waits_too_long_answers_503_with_cc_retry(
    blocking_parser: None, tmp_path: Path, parser_gates: Path, fresh_dsn: str, embedder_url: str
) -> None:
    async with serve(race_settings(tmp_path, fresh_dsn, embedder_url, access_wait_s=0.2)) as (_app, client):
        held = HeldParse(parser_gates / "gate")
        loading = asyncio.create_task(load(client, [held.part("files__default: 20", ["alice", "bob"], "numbat20x")]))
        await held.started()
        deny = {"op": "deny", "userIds": ["bob"], "sourceId": "files__default: 20"}
        status, answer, headers = await post(client, "/updateAccess", deny)
        assert status == 503 and headers["cc-retry"] == "true"
        assert answer == {
            "error": "source 'files__default: 20' still held by an ingest or an earlier change after waiting 0.2 s;"
            " retry in some time (or raise ingest.access_wait_s)"
        }
        held.release()
        assert (await loading)[0] == 200
        # the PHP app keeps the action queued on 503 and sends it again
        assert (await post(client, "/updateAccess", deny))[0] == 200
        assert not await reaches(client, "bob", "files__default: 20", "numbat20x")
        assert await reaches(client, "alice", "files__default: 20", "numbat20x")
