"""A start-up that waits, in the real server process: the engine opens behind the schema migrations, which another
replica may be applying (or which take minutes on a large index; here the test holds their lock). A stop during
that wait ends the app in seconds with nothing half-applied; past `http.start_up_wait_s` the app answers /heartbeat
(AppAPI gives an update 10 minutes) and says on the other routes which step the engine is at, and a stop then ends
it as quickly. In-process: an opening that fails after start-up is named on the routes and tried again, and an app
AppAPI enabled while its engine opened stays enabled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from async_wait import wait_until
from contract_kit import A_SHARE, APP_SECRET, contract_config, make_settings, running_app, signed_headers
from headless_chromium import run_chromium
from live_app import answers_heartbeat, start_live_app
from live_app_kit import small_config
from local_ports import free_port
from migration_lock import migrations_applied, migrations_held, waits_for_migrations
from server_process import ServerProcess
from waiting import wait_for

from appliance.config import parse_config
from appliance.launch import app_server_arguments
from quart_app import create_app
from quart_app.engine import ENGINE_EXTENSION

# nothing listens there: opening the engine calls no embedder with a catalogued local model
NO_EMBEDDER = "http://127.0.0.1:9/v1"
# http.start_up_wait_s: the app serves /heartbeat this long after its engine began opening
START_UP_WAIT_S = 2.0


def start_waiting_app(tmp_path: Path, dsn: str, **config: Any) -> tuple[str, ServerProcess]:
    """(base URL, app server), returned once its start-up waits for the migrations' lock."""
    raw = small_config(NO_EMBEDDER, **config)
    base, server = start_live_app(
        tmp_path / "storage",
        dsn,
        raw,
        tmp_path / "server.log",
        server_args=app_server_arguments(parse_config(raw)),
        ready=lambda _base: waits_for_migrations(dsn),
    )
    return base, server


def start_serving_app(tmp_path: Path, dsn: str) -> tuple[str, ServerProcess]:
    """(base URL, app server), returned once it answers /heartbeat while its engine waits for the migrations."""
    base, server = start_waiting_app(tmp_path, dsn, http={"start_up_wait_s": START_UP_WAIT_S})
    try:
        wait_for(lambda: _serves(base), 60, "the app to answer /heartbeat while its engine waits")
    except BaseException:
        server.stop()
        raise
    return base, server


@pytest.mark.parametrize(
    ("start", "limit_s", "logged"),
    [
        # before, start-up ran on until the lock was free (or hypercorn's 60 s ended it); docker stop kills at 10 s
        (start_waiting_app, 5.0, "stop requested during start-up: the engine was not opened"),
        (start_serving_app, 10.0, "stopped while the engine was opening (attempt 1): what it had opened is closed"),
    ],
    ids=["during-start-up", "after-start-up"],
)
def test_a_stop_while_the_engine_opens_ends_the_app_in_seconds_with_nothing_applied(
    tmp_path: Path, fresh_dsn: str, start: Callable[[Path, str], tuple[str, ServerProcess]], limit_s: float, logged: str
) -> None:
    with migrations_held(fresh_dsn):
        _base, server = start(tmp_path, fresh_dsn)
        log = server.stop_within(limit_s)
        assert logged in log
        # its wait was cancelled in the server too, and its transaction rolled back
        assert not waits_for_migrations(fresh_dsn)
    assert migrations_applied(fresh_dsn) == 0


def test_past_the_start_up_wait_the_app_serves_and_says_what_the_engine_waits_for(
    tmp_path: Path, fresh_dsn: str
) -> None:
    with migrations_held(fresh_dsn) as held:
        base, server = start_serving_app(tmp_path, fresh_dsn)
        try:
            status = httpx.get(f"{base}/status", headers=signed_headers(), timeout=10)
            assert status.status_code == 503
            waiting = f"waiting for the migration another replica runs (PostgreSQL pid {held.pid})"
            assert f"the engine is still opening ({waiting}, for" in status.json()["error"]
            # the engine opens by itself: the PHP app keeps what it sent queued, as on the other routes
            assert status.headers.get("cc-retry") == "true"
            assert f"the engine has not opened within {START_UP_WAIT_S:g} s ({waiting})" in server.log_text()
            assert migrations_applied(fresh_dsn) == 0
            # the status page shows the same message instead of a bare HTTP 503
            page = run_chromium(base.replace("http://", f"http://admin:{APP_SECRET}@") + "/status/page.html")
            assert f"HTTP 503: Error: the engine is still opening ({waiting}" in page
            # drawn as the partial report it carries: the database answers, the figures wait for the engine
            assert 'data-state="degraded"' in page and "<dd>unknown until the engine has opened</dd>" in page
        except BaseException:
            server.stop()
            raise
    try:
        wait_for(lambda: _status_code(base) == 200, 120, "GET /status to answer once the migrations' lock is free")
        assert migrations_applied(fresh_dsn) > 0
        report = httpx.get(f"{base}/status", headers=signed_headers(), timeout=10).json()
        assert report["loops"]["engine_opening"]["state"] == "opened"
        assert "engine opened after start-up (attempt 1)" in server.log_text()
    finally:
        server.stop()


async def test_an_opening_that_fails_after_start_up_is_named_on_the_routes_and_tried_again(tmp_path: Path) -> None:
    """Nothing restarts the process for an opening that fails once the app serves: the app tries again itself, and
    the routes say what failed instead of a bare 503."""
    raw = contract_config(NO_EMBEDDER, http={"start_up_wait_s": 0.1}, pgvector={"connect_timeout_s": 0.5})
    nothing_listens = f"postgresql://ccb@127.0.0.1:{free_port()}/ccb"
    app = create_app(make_settings(tmp_path / "storage", nothing_listens, raw))
    async with running_app(app) as test_app:
        client = test_app.test_client()
        assert (await client.get("/heartbeat")).status_code == 200
        await client.put("/enabled?enabled=1", headers=signed_headers())

        async def named() -> bool:
            answer = await client.post("/countIndexedDocuments", headers=signed_headers())
            return "the engine is waiting for PostgreSQL" in str((await answer.get_json())["error"])

        await wait_until(named, "the routes to name the failed opening", timeout_s=30)
        answer = await client.post("/countIndexedDocuments", headers=signed_headers())
        error = (await answer.get_json())["error"]
        # the statistics' 503 goes without cc-retry: the PHP app would show its own text instead of this one
        assert answer.status_code == 503 and "cc-retry" not in answer.headers
        assert error.startswith("Error: the engine is waiting for PostgreSQL (trying again in 5 s): PostgreSQL cannot")
        assert "Connection refused" in error, error
        # GET /status's own 503 for the same wait says so the same way (before: no cc-retry)
        status = await client.get("/status", headers=signed_headers())
        assert status.status_code == 503 and status.headers.get("cc-retry") == "true"
        assert (await status.get_json())["error"].startswith("Error: the engine is waiting for PostgreSQL")


async def test_while_another_replica_holds_the_migrations_the_routes_say_so_and_ask_for_the_batch_again(
    tmp_path: Path, fresh_dsn: str
) -> None:
    """Before, the 503 of an engine only still opening carried no cc-retry: the PHP app took it for a failed request
    and logged each batch as an error (5.3's IndexerJob), though the engine opens by itself."""
    settings = make_settings(
        tmp_path / "storage", fresh_dsn, contract_config(NO_EMBEDDER, http={"start_up_wait_s": 0.1})
    )
    with migrations_held(fresh_dsn) as held:
        app = create_app(settings)
        async with running_app(app) as test_app:
            client = test_app.test_client()
            await client.put("/enabled?enabled=1", headers=signed_headers())
            await wait_until(lambda: asyncio.to_thread(waits_for_migrations, fresh_dsn), "the opening to wait")
            refused = await client.post("/updateAccess", json=A_SHARE, headers=signed_headers())
            status = await client.get("/status", headers=signed_headers())
    error = (await refused.get_json())["error"]
    assert (refused.status_code, refused.headers.get("cc-retry")) == (503, "true"), error
    # before: "(applying the schema migrations, for 0 s) (one replica at a time under a lock, so maybe after another
    # replica's; ...)", though which session holds the lock is known
    waiting = f"waiting for the migration another replica runs (PostgreSQL pid {held.pid})"
    assert error.startswith(f"Error: the engine is still opening ({waiting}, for "), error
    assert (
        "(one replica at a time; minutes on a large index); it opens by itself, the app answers /heartbeat, /init and"
        " /enabled meanwhile; send the request again later" in error
    ), error
    assert (status.status_code, status.headers.get("cc-retry")) == (503, "true")


async def test_an_app_enabled_while_its_engine_opens_stays_enabled_once_it_has_opened(
    tmp_path: Path, fresh_dsn: str
) -> None:
    """An update: AppAPI disabled the old version (the flag shared in the database says so), and enables the new one
    while its engine still waits for the migrations. The shared flag's loop starts only once the engine has opened; it
    must not take the stored 'disabled' for another replica's newer choice."""
    storage = tmp_path / "storage"
    before = make_settings(storage, fresh_dsn, contract_config(NO_EMBEDDER))
    settings = make_settings(storage, fresh_dsn, contract_config(NO_EMBEDDER, http={"start_up_wait_s": 0.1}))
    async with running_app(create_app(before)) as before_the_update:
        disabled = await before_the_update.test_client().put("/enabled?enabled=0", headers=signed_headers())
        assert disabled.status_code == 200
    with migrations_held(fresh_dsn) as held:
        app = create_app(settings)
        async with running_app(app) as test_app:
            client = test_app.test_client()
            assert ENGINE_EXTENSION not in app.extensions
            assert (await client.put("/enabled?enabled=1", headers=signed_headers())).status_code == 200
            await asyncio.to_thread(held.release)

            async def shared() -> bool:
                return await asyncio.to_thread(_stored_enabled, fresh_dsn) is True

            await wait_until(shared, "the app's enabled flag to be shared once its engine has opened")
            counted = await client.post("/countIndexedDocuments", headers=signed_headers())
            assert counted.status_code == 200, await counted.get_data()
            assert (await (await client.get("/enabled", headers=signed_headers())).get_json()) == {"enabled": True}


def _stored_enabled(dsn: str) -> bool | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT enabled FROM app_enabled").fetchone()
    return None if row is None else bool(row[0])


def _status_code(base: str) -> int:
    try:
        return httpx.get(f"{base}/status", headers=signed_headers(), timeout=10).status_code
    except httpx.HTTPError:
        return 0


def _serves(base: str) -> bool:
    try:
        return bool(answers_heartbeat(base))
    except httpx.HTTPError:
        return False
