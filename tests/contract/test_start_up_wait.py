"""A start-up that waits, in the real server process: the engine opens behind the schema migrations, which another
replica may be applying (or which take minutes on a large index; here the test holds their lock). A stop during
that wait ends the app in seconds with nothing half-applied, and a start-up longer than hypercorn's 60 s start-up
limit (which its command line applied) still ends with the app serving."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from live_app import answers_heartbeat, start_live_app
from live_app_kit import small_config
from server_process import ServerProcess
from waiting import wait_for

from appliance.config import parse_config
from appliance.launch import app_server_arguments
from quart_app.store.migrator import MIGRATION_LOCK_KEY

# nothing listens there: opening the engine calls no embedder with a catalogued local model
NO_EMBEDDER = "http://127.0.0.1:9/v1"
# longer than hypercorn's own start-up limit (60 s), counted from when the app already waits
HELD_S = 62.0


@contextmanager
def migrations_held(dsn: str) -> Iterator[None]:
    """Hold the lock the app's migrations take, as a replica applying them does; released at the end."""
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        yield


def waits_for_migrations(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
        ).fetchone()
    return row is not None and row[0] > 0


def migrations_applied(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if row is None or not row[0]:
            return 0
        counted = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    return 0 if counted is None else int(counted[0])


def start_waiting_app(tmp_path: Path, dsn: str) -> tuple[str, ServerProcess]:
    """(base URL, app server), returned once its start-up waits for the migrations' lock."""
    raw = small_config(NO_EMBEDDER)
    base, server = start_live_app(
        tmp_path / "storage",
        dsn,
        raw,
        tmp_path / "server.log",
        server_args=app_server_arguments(parse_config(raw)),
        ready=lambda _base: waits_for_migrations(dsn),
    )
    return base, server


def test_a_stop_during_start_up_ends_the_app_in_seconds_with_nothing_applied(tmp_path: Path, fresh_dsn: str) -> None:
    with migrations_held(fresh_dsn):
        _base, server = start_waiting_app(tmp_path, fresh_dsn)
        # before, start-up ran on until the lock was free (or hypercorn's 60 s ended it); docker stop kills at 10 s
        log = server.stop_within(5.0)
        assert "stop requested during start-up: the engine was not opened" in log
        # its wait was cancelled in the server too, and its transaction rolled back
        assert not waits_for_migrations(fresh_dsn)
    assert migrations_applied(fresh_dsn) == 0


def test_a_start_up_longer_than_a_minute_ends_with_the_app_serving(tmp_path: Path, fresh_dsn: str) -> None:
    with migrations_held(fresh_dsn):
        base, server = start_waiting_app(tmp_path, fresh_dsn)
        assert server.process is not None
        try:
            time.sleep(HELD_S)
            assert server.process.poll() is None, f"the app ended during start-up:\n{server.log_text()[-3000:]}"
        except BaseException:
            server.stop()
            raise
    try:
        wait_for(lambda: _serves(base), 120, "the app to answer /heartbeat once the migrations' lock is free")
        assert migrations_applied(fresh_dsn) > 0
    finally:
        server.stop()


def _serves(base: str) -> bool:
    try:
        return bool(answers_heartbeat(base))
    except httpx.HTTPError:
        return False
