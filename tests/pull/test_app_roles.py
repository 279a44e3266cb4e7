"""APP_ROLE decides the loops, routes, parse workers and LLM a replica runs; the split roles together do the whole job.

Each role starts the real app (engine, pollers) against the fake Nextcloud; the expected sets are written out here,
not derived from appliance/app_role.py, so a change of the role table shows up as a failing test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from contextlib import AsyncExitStack

import psutil
import psycopg
import pytest
from async_wait import until
from contract_kit import SourcePart, put_sources, signed_headers
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import BUDGET, PullApp, acked, task_done
from rich.console import Console

from appliance.app_role import AppRole
from appliance.ccb_status import render_status
from quart_app import create_app
from quart_app.app_settings import AppSettings
from quart_app.engine_opening import EngineOpening
from quart_app.loop_lag import LoopLagMonitor
from quart_app.routes import BLUEPRINT_DUTIES

EMBEDDING_LOOPS = {"embedding_worker_0", "embedding_worker_listen"}
ROLE_LOOPS = {
    AppRole.NORMAL: {"documents", "actions", "tasks", "status_history", *EMBEDDING_LOOPS},
    AppRole.INDEXING: {"documents", *EMBEDDING_LOOPS},
    AppRole.UPDATESPROC: {"actions"},
    AppRole.REQUESTPROC: {"tasks", "status_history"},
    AppRole.EMBEDDING_WORKER: EMBEDDING_LOOPS,
}
# the roles with the push routes and /trigger, with parse workers, with an LLM
PUSH_AND_TRIGGER = {AppRole.NORMAL, AppRole.REQUESTPROC}
PARSING = {AppRole.NORMAL, AppRole.INDEXING, AppRole.REQUESTPROC}
ANSWERING = {AppRole.NORMAL, AppRole.REQUESTPROC}
ROLE_ROUTES = [
    ("PUT", "/loadSources"),
    ("POST", "/query"),
    ("POST", "/docSearch"),
    ("POST", "/deleteSources"),
    ("POST", "/updateAccessDeclarative"),
    ("POST", "/trigger"),
]


def _role(settings: AppSettings, role: AppRole) -> AppSettings:
    return dataclasses.replace(settings, role=role)


def _parse_workers() -> int:
    """The parse worker processes this test process started (they run as ccb_parser; their command line is public)."""
    children = psutil.Process().children(recursive=True)
    return sum(1 for child in children if "quart_app.loaders.parse_worker" in " ".join(child.cmdline()))


def test_every_blueprint_but_lifecycle_admin_and_status_page_needs_a_duty(pull_settings: AppSettings) -> None:
    """A new route blueprint must say which role serves it, or it would answer in every replica."""
    app = create_app(pull_settings)  # built, not served
    assert set(app.blueprints) - set(BLUEPRINT_DUTIES) == {"lifecycle", "admin", "status_page"}


@pytest.mark.parametrize("role", list(AppRole))
async def test_a_role_runs_its_loops_and_routes_and_answers_the_others_with_404(
    role: AppRole, pull_settings: AppSettings, nextcloud: FakePullNextcloud
) -> None:
    async with PullApp(_role(pull_settings, role), nextcloud) as app:
        await app.enable()
        status = await app.status()
        assert status["role"]["name"] == role.value
        # every role follows the shared enabled flag, watches its event loop and has opened its engine
        opened = {LoopLagMonitor.LOOP_NAME, "enabled_sync", EngineOpening.LOOP_NAME}
        assert set(status["loops"]) == ROLE_LOOPS[role] | opened
        assert _parse_workers() == (1 if role in PARSING else 0)
        assert (app.engine.answer is not None) == (role in ANSWERING)
        assert (status["llm"] is not None) == (role in ANSWERING)
        # `ccb status` names the role above its loops
        console = Console(record=True, width=200)
        console.print(render_status(status))
        assert re.search(rf"APP_ROLE +{role}: [a-z-]+", console.export_text())
        # the lifecycle routes AppAPI calls answer in every role
        for method, path in (("GET", "/heartbeat"), ("GET", "/enabled"), ("POST", "/init")):
            response = await app.client.open(path, method=method, headers=signed_headers(), json=None)
            assert response.status_code == 200, (path, await response.get_data())
        for method, path in ROLE_ROUTES:
            response = await app.client.open(path, method=method, headers=signed_headers(), json={})
            body = await response.get_json()
            if role in PUSH_AND_TRIGGER:
                assert response.status_code != 404, (path, body)
                continue
            duty = "tasks" if path == "/trigger" else "push-routes"
            assert (response.status_code, body) == (
                404,
                {
                    "error": f"{method} {path} is not served by this replica (APP_ROLE={role}, which does not run "
                    f"{duty}); send it to a replica with APP_ROLE=requestproc or normal"
                },
            )


async def test_the_three_roles_appapi_deploys_index_update_and_answer_together(
    pull_settings: AppSettings, nextcloud: FakePullNextcloud
) -> None:
    """requestproc, updatesproc and indexing (info.xml's k8s-service-roles) on one database and one Nextcloud."""
    budget = nextcloud.add_file(["alice"], "files/Documents/budget.txt", BUDGET)
    async with AsyncExitStack() as stack:
        requests, updates, indexing = [
            await stack.enter_async_context(PullApp(_role(pull_settings, role), nextcloud))
            for role in (AppRole.REQUESTPROC, AppRole.UPDATESPROC, AppRole.INDEXING)
        ]
        await asyncio.gather(requests.enable(), updates.enable(), indexing.enable())
        await until(lambda: len(acked(nextcloud, "files")) == 1, what="the indexing replica acknowledged the file")
        await indexing.drain_embeddings()
        task = nextcloud.schedule_task(
            "context_chat:context_chat_search",
            "alice",
            {"prompt": "travel budget Berlin", "scopeType": "none", "scopeList": [], "scopeListMeta": "", "limit": 5},
        )
        done = await task_done(nextcloud, task)
        assert done["status"] == "STATUS_SUCCESSFUL", done
        assert [json.loads(source)["id"] for source in done["output"]["sources"]] == [f"files__default: {budget}"]
        action = nextcloud.add_action("delete_source_ids", {"sourceIds": [f"files__default: {budget}"]})
        await until(lambda: action in acked(nextcloud, "actions"), what="the updatesproc replica acknowledged")
        await updates.actions_applied()
        assert await requests.search("alice", "travel budget Berlin") == []


def _unembedded(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM chunks WHERE embedding IS NULL").fetchone()
    assert row is not None
    return int(row[0])


async def test_an_embedding_worker_embeds_what_a_requestproc_replica_ingested(
    pull_settings: AppSettings, nextcloud: FakePullNextcloud
) -> None:
    nextcloud.pull_supported = False  # a PHP app <= 5.3 pushing to requestproc
    async with PullApp(_role(pull_settings, AppRole.REQUESTPROC), nextcloud) as requests:
        await requests.enable()
        response = await put_sources(requests.client, [SourcePart("files__default: 1", BUDGET, user_ids=["alice"])])
        assert response.status_code == 200
        # requestproc runs no embedding worker: the chunks wait
        assert _unembedded(pull_settings.db_url) > 0
        async with PullApp(_role(pull_settings, AppRole.EMBEDDING_WORKER), nextcloud) as worker:
            await worker.enable()
            await worker.engine.worker.wait_listening()
            await until(lambda: _unembedded(pull_settings.db_url) == 0, what="the embedding worker embedded them")
        assert await requests.search("alice", "travel budget Berlin") == ["files__default: 1"]
