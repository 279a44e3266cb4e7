"""The app under test in pull mode, and waits on what the fake Nextcloud saw (no sleeps before asserting)."""

from __future__ import annotations

import asyncio
import json
import time
from types import TracebackType
from typing import Any

import psycopg
from contract_kit import signed_headers
from nextcloud_pull_fake import LOCK_TIMEOUT_S, FakePullNextcloud
from quart import Quart
from quart.testing.app import TestApp as LifespanApp

from quart_app import create_app
from quart_app.app_settings import AppSettings
from quart_app.engine import ENGINE_EXTENSION, Engine

# the small corpus of the pull tests: one fact per file, so a search names the file that holds it
BUDGET = b"Quarterly budget: the travel budget for the Berlin office is 12000 euros."
LABEL = b"The Ethical AI Rating gives a green label when model, data and code are open."
HIKING = b"Bob's holiday plan: hiking in the Alps in July with a tent."

# short waits so a test sees backoff and polling in milliseconds; the defaults are pinned in test_pull_config.py
FAST_PULL = {
    "idle_poll_s": 0.05,
    "idle_poll_max_s": 0.2,
    "error_backoff_s": 0.05,
    "error_backoff_max_s": 0.2,
    "recheck_unavailable_s": 0.3,
    "fetch_backoff_s": 0.05,
    "fetch_backoff_max_s": 0.2,
    "task_poll_s": 0.1,
    "task_poll_after_trigger_s": 0.5,
}


class PullApp:
    """`async with PullApp(settings, fake)`: create_app + lifespan; `client` is a signed test client."""

    def __init__(self, settings: AppSettings, nextcloud: FakePullNextcloud) -> None:
        self.settings = settings
        self.nextcloud = nextcloud
        self.app: Quart = create_app(settings)
        # the engine opens a parse pool, the database and the models: Quart's 6 s default is short on a busy machine
        self._context = LifespanApp(self.app, startup_timeout=120, shutdown_timeout=60)

    async def __aenter__(self) -> PullApp:
        await self._context.__aenter__()
        self.client = self.app.test_client()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._context.__aexit__(exc_type, exc, tb)  # type: ignore[arg-type]

    @property
    def engine(self) -> Engine:
        opened: Engine = self.app.extensions[ENGINE_EXTENSION]
        return opened

    async def enable(self, value: bool = True) -> None:
        response = await self.client.put(
            "/enabled", query_string={"enabled": "1" if value else "0"}, headers=signed_headers()
        )
        assert response.status_code == 200 and await response.get_json() == {"error": ""}

    async def status(self) -> dict[str, Any]:
        response = await self.client.get("/status", headers=signed_headers())
        assert response.status_code == 200
        body: dict[str, Any] = await response.get_json()
        return body

    async def post(self, path: str, body: Any, user: str = "") -> tuple[int, Any]:
        response = await self.client.post(path, json=body, headers=signed_headers(user))
        return response.status_code, await response.get_json()

    async def search(self, user: str, query: str, limit: int = 10) -> list[str]:
        status, body = await self.post("/docSearch", {"userId": user, "query": query, "ctxLimit": limit}, user)
        assert status == 200, body
        return [hit["source_id"] for hit in body]

    async def drain_embeddings(self) -> None:
        await self.engine.worker.drain()

    async def actions_applied(self, timeout_s: float = 30.0) -> None:
        """Wait until every action the actions loop stored is applied: acknowledged only means stored."""
        deadline = time.monotonic() + timeout_s
        while True:
            async with self.engine.db.connection() as conn:
                row = await (await conn.execute("SELECT count(*) FROM pull_actions WHERE done_at IS NULL")).fetchone()
            if row is not None and row[0] == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {row} stored actions to be applied")
            await asyncio.sleep(0.02)


def days_pass(dsn: str, nextcloud: FakePullNextcloud, days: int) -> None:
    """`days` pass while the app is down: on our records' clock, and on Nextcloud's (every lock it holds ends)."""
    with psycopg.connect(dsn) as conn:
        shift = f"{days} days"
        conn.execute(
            "UPDATE pull_actions SET received_at = received_at - %s::interval, done_at = done_at - %s::interval,"
            " acked_at = acked_at - %s::interval",
            (shift, shift, shift),
        )
    clock = time.time() + days * LOCK_TIMEOUT_S
    nextcloud.now = lambda: clock


def acked(nextcloud: FakePullNextcloud, kind: str) -> set[int]:
    return set(nextcloud.acked_documents()[kind])


async def task_done(nextcloud: FakePullNextcloud, task_id: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """The task once the app posted its result (the fake's wait runs in a thread: the app shares this loop)."""
    return await asyncio.to_thread(nextcloud.wait_task, task_id, timeout_s)


def sources(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The sources of a finished TaskProcessing task, each unique and in the PHP app's shape."""
    assert task["status"] == "STATUS_SUCCESSFUL", task
    found = [json.loads(text) for text in task["output"]["sources"]]
    # unique as a whole: two mails share their provider key as id (enrich_sources)
    assert len(set(task["output"]["sources"])) == len(found), "sources are unique"
    assert all(set(s) == {"id", "label", "icon", "url"} for s in found)
    return found


def chat(prompt: str, **scope: Any) -> dict[str, Any]:
    """A chat (or, with `limit`, search) task's input without a scope."""
    return {"prompt": prompt, "scopeType": "none", "scopeList": [], "scopeListMeta": "", **scope}
