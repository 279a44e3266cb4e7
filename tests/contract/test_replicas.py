"""Issue 11: two app replicas on one PostgreSQL database share their claims and their enabled flag.

Two apps in this process, each with its own engine (pools, parse pool, ordering), storage and clients, on the same
fresh database: what one replica holds or changes, the other sees only through the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from access_race_kit import TEXT, HeldParse, blocking_parser, load, post, race_settings, reaches, serve
from async_wait import until, wait_until
from contract_kit import SourcePart, contract_config, make_settings, running_app, signed_headers
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_app import create_app
from quart_app.engine import ENGINE_EXTENSION, Engine

__all__ = ["blocking_parser"]  # a fixture the tests here use

Replica = tuple[Quart, Client]


@pytest.fixture
async def replicas(
    blocking_parser: None, tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> AsyncIterator[tuple[Replica, Replica]]:
    """Replicas A and B, enabled, one /loadSources at a time each."""
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(serve(race_settings(tmp_path / "a", fresh_dsn, embedder_url)))
        b = await stack.enter_async_context(serve(race_settings(tmp_path / "b", fresh_dsn, embedder_url)))
        yield a, b


async def _fetch(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall()


async def _a_claim_waits(dsn: str) -> bool:
    """Whether a session waits in PostgreSQL's queue for a claim (an access change behind an ingest)."""
    return bool(await _fetch(dsn, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))


def _source(source_id: str, word: str, users: list[str]) -> SourcePart:
    return SourcePart(source_id, TEXT.format(word=word).encode(), users)


async def test_a_source_loaded_through_both_replicas_at_once_is_indexed_once(
    replicas: tuple[Replica, Replica], parser_gates: Path, fresh_dsn: str
) -> None:
    (_, a), (_, b) = replicas
    source_id = "files__default: 1"
    held = HeldParse(parser_gates / "gate")
    loading = asyncio.create_task(load(a, [held.part(source_id, ["alice"], "kiwi1x")]))
    await held.started()
    # B's own ordering knows nothing of A's parse: only the database claim turns it away
    status, answer = await load(b, [_source(source_id, "kiwi1x", ["alice"])])
    assert status == 503 and "already being processed" in answer["error"], answer
    held.release()
    status, answer = await loading
    assert status == 200 and answer["loaded_sources"] == [source_id], answer
    # one document row, written once (version 1), one set of chunks
    (written,) = await _fetch(
        fresh_dsn,
        "SELECT d.version, count(*), count(DISTINCT c.version), count(DISTINCT c.ordinal) FROM documents d"
        " JOIN chunks c USING (source_id) WHERE d.source_id = %s GROUP BY d.version",
        source_id,
    )
    version, chunks, chunk_versions, ordinals = written
    assert (version, chunk_versions) == (1, 1) and chunks == ordinals >= 1, written
    assert await reaches(b, "alice", source_id, "kiwi1x")


async def test_an_access_change_on_b_during_a_load_on_a_waits_for_it_and_wins(
    replicas: tuple[Replica, Replica], parser_gates: Path, fresh_dsn: str
) -> None:
    (_, a), (_, b) = replicas
    source_id = "files__default: 2"
    held = HeldParse(parser_gates / "gate")
    loading = asyncio.create_task(load(a, [held.part(source_id, ["alice", "bob"], "kiwi2x")]))
    await held.started()
    deny = {"op": "deny", "userIds": ["bob"], "sourceId": source_id}
    change = asyncio.create_task(post(b, "/updateAccess", deny))
    # the deny either committed already (what the per-process ordering did) or waits in the database for A's load
    await wait_until(lambda: _done_or(change, lambda: _a_claim_waits(fresh_dsn)), "the deny")
    held.release()
    status, answer = await loading
    assert status == 200 and answer["loaded_sources"] == [source_id], answer
    assert (await change)[0] == 200
    for client in (a, b):
        assert await reaches(client, "alice", source_id, "kiwi2x")
        assert not await reaches(client, "bob", source_id, "kiwi2x"), "the load on A undid the deny made on B"


async def test_a_load_waiting_on_a_when_b_commits_an_access_change_is_retried_not_written(
    replicas: tuple[Replica, Replica], parser_gates: Path
) -> None:
    (app_a, a), (_, b) = replicas
    held = HeldParse(parser_gates / "gate")
    first = asyncio.create_task(load(a, [held.part("files__default: 10", ["alice"], "kiwi10x")]))
    await held.started()
    # one load at a time on A: this one waits at A's gate with bob still listed
    waiting = asyncio.create_task(load(a, [_source("files__default: 11", "kiwi11x", ["alice", "bob"])]))
    engine_a: Engine = app_a.extensions[ENGINE_EXTENSION]
    await until(lambda: engine_a.order.snapshot()["loads_open"] == 2, what="the second load to arrive")
    deny = {"op": "deny", "userIds": ["bob"], "sourceId": "files__default: 11"}
    assert (await post(b, "/updateAccess", deny))[0] == 200
    held.release()
    assert (await first)[0] == 200
    status, answer = await waiting
    assert status == 200 and answer == {"loaded_sources": [], "sources_to_retry": ["files__default: 11"]}, answer
    assert not await reaches(b, "bob", "files__default: 11", "kiwi11x")


async def test_a_claim_whose_connection_dies_is_released_and_the_other_replica_proceeds(
    replicas: tuple[Replica, Replica], parser_gates: Path, fresh_dsn: str
) -> None:
    (_, a), (_, b) = replicas
    source_id = "files__default: 30"
    held = HeldParse(parser_gates / "gate")
    loading = asyncio.create_task(load(a, [held.part(source_id, ["alice"], "kiwi30x")]))
    await held.started()
    assert (await load(b, [_source(source_id, "kiwi30x", ["alice"])]))[0] == 503
    # what a crashed replica's claims go through: its connections end, and PostgreSQL drops their locks
    killed = await _fetch(
        fresh_dsn,
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND pid <> pg_backend_pid()",
    )
    # a backend may end on its own between the lock scan and the signal (False); one that held a claim must be ended
    assert any(done for (done,) in killed), killed
    status, answer = await load(b, [_source(source_id, "kiwi30x", ["alice"])])
    assert status == 200 and answer["loaded_sources"] == [source_id], answer
    held.release()
    assert (await loading)[0] == 200
    # A's claims work again on fresh connections: an access change on A goes through
    assert (await post(a, "/updateAccess", {"op": "allow", "userIds": ["carol"], "sourceId": source_id}))[0] == 200
    assert await reaches(b, "carol", source_id, "kiwi30x")


async def test_enabling_one_replica_enables_the_other(tmp_path: Path, fresh_dsn: str, embedder_url: str) -> None:
    async with AsyncExitStack() as stack:
        clients = []
        for name in ("a", "b"):
            app = create_app(make_settings(tmp_path / name, fresh_dsn, contract_config(embedder_url)))
            # not enter_async_context: Quart types TestApp.__aexit__'s arguments without None
            test_app = running_app(app)
            await test_app.startup()
            stack.push_async_callback(test_app.shutdown)
            clients.append(app.test_client())
        a, b = clients
        assert await _enabled(b) is False
        assert (await b.post("/countIndexedDocuments", headers=signed_headers())).status_code == 503
        response = await a.put("/enabled", query_string={"enabled": "1"}, headers=signed_headers())
        assert response.status_code == 200
        await wait_until(lambda: _enabled(b), "B to follow A's PUT /enabled")
        assert (await b.post("/countIndexedDocuments", headers=signed_headers())).status_code == 200
        response = await b.put("/enabled", query_string={"enabled": "0"}, headers=signed_headers())
        assert response.status_code == 200
        await wait_until(_returns_not(lambda: _enabled(a)), "A to follow B's PUT /enabled")
        assert (await a.post("/countIndexedDocuments", headers=signed_headers())).status_code == 503


async def _enabled(client: Client) -> bool:
    response = await client.get("/enabled", headers=signed_headers())
    return bool((await response.get_json())["enabled"])


async def _done_or(task: asyncio.Task[Any], waiting: Callable[[], Awaitable[bool]]) -> bool:
    return task.done() or await waiting()


def _returns_not(check: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
    async def negated() -> bool:
        return not await check()

    return negated
