"""PostgreSQL down when the app starts: past `http.start_up_wait_s` the engine goes on opening, waiting for it, and
GET /status's 503 still carries the programs and the loops, the database's outage (since when, the last error) and
what the engine waits for; `ccb status` and `ccb doctor` say what to do; once PostgreSQL is started the engine opens."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import live_app
import psycopg
import pytest
from contract_kit import signed_headers
from live_app_kit import ccb_env, running_live_app, small_config
from migration_lock import migrations_applied, waits_for_migrations
from restartable_postgres import RestartablePostgres
from waiting import wait_for

from appliance.ccb import EXIT_APP_ERROR
from appliance.config import parse_config
from appliance.launch import app_server_arguments
from quart_app.store.migration_lock import MIGRATION_LOCK_KEY

CCB = [sys.executable, "-c", "import sys; from appliance.ccb import main; sys.exit(main())"]
pytestmark = pytest.mark.slow
# the app serves after 1 s; its opening waits up to 10 minutes for PostgreSQL (an admin's long connect timeout)
WAITING_CONFIG = {
    "http": {"start_up_wait_s": 1},
    "vectordb": {"pgvector": {"pool_max": 6, "acquire_timeout_s": 2, "connect_timeout_s": 600}},
}


def _status_code(base: str) -> int:
    return httpx.get(f"{base}/status", headers=signed_headers(), timeout=30).status_code


def test_status_while_the_engine_waits_for_postgres_at_start_shows_the_programs_and_says_what_to_do(
    tmp_path: Path, restartable_pg: RestartablePostgres, embedder_url: str
) -> None:
    """The engine's 503 was a bare {"error": "... still opening (connecting to PostgreSQL, for N s) ..."}: an admin
    whose database never came up saw no programs, no database line and no fix in `ccb status` or `ccb doctor`."""
    restartable_pg.stop_fast()
    stopped = time.time()
    with running_live_app(tmp_path, restartable_pg.test_dsn, embedder_url, **WAITING_CONFIG) as (base, _server):
        env = {**ccb_env(base, tmp_path / "storage"), "COLUMNS": "400"}
        try:
            response = httpx.get(f"{base}/status", headers=signed_headers(), timeout=60)
            text = subprocess.run([*CCB, "status"], env=env, capture_output=True, text=True, timeout=120)
            doctor = subprocess.run([*CCB, "doctor", "--json"], env=env, capture_output=True, text=True, timeout=120)
        finally:
            restartable_pg.start()
        wait_for(lambda: _status_code(base) == 200, 120, "the engine to open once PostgreSQL is started")
        after = httpx.get(f"{base}/status", headers=signed_headers(), timeout=30).json()
    assert response.status_code == 503 and response.headers.get("cc-retry") == "true"
    report = response.json()
    assert report["error"].startswith("Error: the engine is still opening (connecting to PostgreSQL, for "), report
    database = report["database"]
    assert database["state"] == "unavailable" and stopped <= database["unavailable_since"] <= time.time()
    # the unix socket went with the server: the connection failure itself
    assert "No such file or directory" in database["last_error"], database
    opening = report["loops"]["engine_opening"]
    assert (opening["state"], opening["detail"]) == ("opening", "connecting to PostgreSQL")
    assert report["programs"] and report["hardware"]["arch"] and report["role"]["name"] == "normal"
    # the embedding worker starts with the engine: not known yet
    assert (report["embedder"], report["documents"], report["pull"]["detail"]) == (
        None,
        None,
        "NEXTCLOUD_URL is not set",
    )
    assert text.returncode == EXIT_APP_ERROR, text.stderr
    assert "engine             not open: opening since " in text.stdout, text.stdout
    assert "connecting to PostgreSQL; it opens by itself once that is done" in text.stdout
    assert (
        "database           unavailable since " in text.stdout and "start it (embedded: see the postgres" in text.stdout
    )
    assert "documents          unknown until the engine has opened" in text.stdout and "Programs" in text.stdout
    assert "embedding service  unknown until the engine has opened" in text.stdout
    checks = json.loads(doctor.stdout.strip().splitlines()[-1])["checks"]
    app = next(check for check in checks if check["name"] == "app")
    assert app["outcome"] == "fail" and app["fix"].startswith("the app waits for PostgreSQL: start it"), app
    assert after["database"]["state"] == "available" and after["loops"]["engine_opening"]["state"] == "opened"
    # the same parts as the report of an open engine, the error on top
    assert set(report) - {"error"} == set(after), set(report) ^ set(after)


# the first attempt gives up on PostgreSQL (connect_timeout_s) well inside start-up's wait (shipped: 30 s in 60 s)
GIVING_UP_CONFIG = {
    "http": {"start_up_wait_s": 60},
    "vectordb": {"pgvector": {"pool_max": 6, "acquire_timeout_s": 2, "connect_timeout_s": 1}},
}


def _opening(base: str) -> dict[str, object]:
    report = httpx.get(f"{base}/status", headers=signed_headers(), timeout=30).json()
    opening: dict[str, object] = report["loops"]["engine_opening"]
    return opening


def test_postgres_down_past_its_connect_timeout_at_start_leaves_the_app_serving_until_it_opens_by_itself(
    tmp_path: Path, restartable_pg: RestartablePostgres, embedder_url: str
) -> None:
    """Before, the opening's first attempt failed start-up: the app process exited without answering anything (not
    /heartbeat, not GET /status), with a traceback, for supervisord to restart it every ~31 s."""
    restartable_pg.stop_fast()
    stopped = time.time()
    with running_live_app(tmp_path, restartable_pg.test_dsn, embedder_url, **GIVING_UP_CONFIG) as (base, server):
        try:
            status = httpx.get(f"{base}/status", headers=signed_headers(), timeout=30)
            counted = httpx.post(f"{base}/countIndexedDocuments", headers=signed_headers(), timeout=30)
            # the second attempt has failed too: its pause doubled
            wait_for(
                lambda: _opening(base).get("detail") == "for PostgreSQL (trying again in 10 s)",
                120,
                "the second opening attempt to fail",
            )
            log_while_down = server.log_text()
        finally:
            restartable_pg.start()
        wait_for(lambda: _status_code(base) == 200, 120, "the engine to open once PostgreSQL is started")
        counted_after = httpx.post(f"{base}/countIndexedDocuments", headers=signed_headers(), timeout=30)
        log = server.log_text()
    assert status.status_code == 503
    database = status.json()["database"]
    assert database["state"] == "unavailable" and stopped <= database["unavailable_since"] <= time.time()
    assert "No such file or directory" in database["last_error"], database
    # the statistics' 503 names the outage and the fix, without cc-retry (the PHP app would show its own text instead)
    assert counted.status_code == 503 and "cc-retry" not in counted.headers, counted.text
    error = counted.json()["error"]
    # between attempts, or in the second one
    waiting = ("waiting for PostgreSQL (trying again in 5 s)", "still opening (connecting to PostgreSQL, for ")
    assert error.startswith(tuple(f"Error: the engine is {doing}" for doing in waiting)), error
    assert ": PostgreSQL cannot be reached since " in error and "No such file or directory" in error, error
    assert "start it (embedded: `ccb logs postgres`) or check the server EXTERNAL_DB names" in error, error
    # the outage logged once with what to do; no traceback per attempt
    assert log_while_down.count("PostgreSQL cannot be reached (") == 1, log_while_down[-3000:]
    assert "it opens by itself once PostgreSQL answers" in log_while_down
    assert "Traceback" not in log_while_down, log_while_down[-3000:]
    # nor the pool's connection warnings, nor the wait's info line, at every attempt
    assert log_while_down.count("waiting for PostgreSQL to accept connections") == 1, log_while_down[-3000:]
    assert '"logger": "psycopg.pool"' not in log_while_down, log_while_down[-3000:]
    # nor the pool's sizes (before: once per attempt, every 30 s of an outage): once, when the pool opened
    assert "database pool for APP_ROLE" not in log_while_down, log_while_down[-3000:]
    assert log.count("database pool for APP_ROLE normal: ") == 1, log[-3000:]
    assert counted_after.status_code == 200 and "engine opened after start-up (attempt " in log, log[-3000:]


def _answers_heartbeat(base: str) -> bool:
    try:
        return httpx.get(f"{base}/heartbeat", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_postgres_lost_while_the_first_attempt_migrates_is_the_same_outage_and_the_engine_opens_by_itself(
    tmp_path: Path, restartable_pg: RestartablePostgres, embedder_url: str
) -> None:
    """Before, the migration connection's raw OperationalError (PostgreSQL lost after the pool had opened) failed
    start-up like a real fault: the app exited with a traceback, answering nothing, for supervisord to restart it."""
    dsn = restartable_pg.test_dsn
    # the whole first attempt inside start-up's wait: the case that failed start-up
    raw = small_config(embedder_url, http={"start_up_wait_s": 600})
    holder = psycopg.connect(dsn, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    # returned once the opening waits behind the lock on its migration connection: its pool is open by then
    base, server = live_app.start_live_app(
        tmp_path / "storage",
        dsn,
        raw,
        tmp_path / "server.log",
        server_args=app_server_arguments(parse_config(raw)),
        timeout_s=180,
        ready=lambda _base: waits_for_migrations(dsn),
    )
    try:
        try:
            restartable_pg.stop_fast()
            holder.close()
            process = server.process
            assert process is not None
            wait_for(
                lambda: _answers_heartbeat(base) or process.poll() is not None,
                120,
                "the app to answer /heartbeat (or exit)",
            )
            assert process.poll() is None, f"the app exited:\n{server.log_text()[-3000:]}"
            down = httpx.get(f"{base}/status", headers=signed_headers(), timeout=30)
            log_while_down = server.log_text()
        finally:
            restartable_pg.start()
        wait_for(lambda: _status_code(base) == 200, 120, "the engine to open once PostgreSQL is started")
    finally:
        server.stop()
    assert down.status_code == 503 and down.json()["database"]["state"] == "unavailable", down.text
    assert log_while_down.count("PostgreSQL cannot be reached (") == 1, log_while_down[-3000:]
    assert "Traceback" not in log_while_down, log_while_down[-3000:]
    assert migrations_applied(dsn) > 0
