"""The `postgres` program of supervisord.conf under a real supervisord: start, restart, kill -9 recovery, shutdown."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from appliance_kit import PYTHON, REPO, Supervisor, alive, descendants, supervisor_env, wait_for, write_config

from appliance.postgres import EmbeddedPostgres
from appliance.storage import StorageLayout

pytestmark = pytest.mark.slow

KEPT_SECTIONS = ("supervisord", "unix_http_server", "supervisorctl", "rpcinterface:supervisor", "program:postgres")


def postgres_only_conf(target: Path) -> Path:
    """supervisord.conf as shipped, minus the app and embedder programs (they are tested with the entrypoint)."""
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(REPO / "supervisord.conf")
    for section in parser.sections():
        if section not in KEPT_SECTIONS:
            parser.remove_section(section)
    assert parser.get("program:postgres", "stopsignal") == "INT"
    parser.set("program:postgres", "directory", str(REPO))
    with target.open("w") as handle:
        parser.write(handle)
    return target


@pytest.fixture(scope="module")
def supervised() -> Iterator[tuple[Supervisor, EmbeddedPostgres]]:
    root = Path(tempfile.mkdtemp(prefix="ccb-sv-", dir="/tmp"))
    storage = StorageLayout(root / "storage")
    storage.ensure()
    supervisor = Supervisor(
        postgres_only_conf(root / "supervisord.conf"), supervisor_env(storage.root), root / "sv.log"
    )
    cluster = EmbeddedPostgres(storage.pgdata, storage.pg_socket_dir)
    try:
        yield supervisor, cluster
    finally:
        supervisor.stop()
        shutil.rmtree(root, ignore_errors=True)


def query(cluster: EmbeddedPostgres, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(cluster.dsn, connect_timeout=5, autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


def connectable(cluster: EmbeddedPostgres) -> bool:
    try:
        return query(cluster, "SELECT 1") == [(1,)]
    except psycopg.OperationalError:
        return False


def test_postgres_starts_running_with_role_database_and_vector(supervised: tuple[Supervisor, EmbeddedPostgres]) -> None:
    supervisor, cluster = supervised
    supervisor.wait_state("postgres", "RUNNING", timeout=45)
    wait_for(lambda: connectable(cluster), 20, "PostgreSQL to accept connections")
    assert query(cluster, "SELECT current_user, current_database()") == [("ccb", "ccb")]
    assert query(cluster, "SELECT extname FROM pg_extension WHERE extname = 'vector'") == [("vector",)]
    assert query(cluster, "SELECT rolsuper FROM pg_roles WHERE rolname = 'ccb'") == [(False,)]
    assert query(cluster, "SHOW maintenance_work_mem") == [("1GB",)]  # pgsql/postgresql.conf is included
    assert query(cluster, "SHOW io_method") == [("sync",)]  # reads from the page cache without an io worker hop
    assert query(cluster, "SHOW listen_addresses") == [("",)]  # unix socket only
    query(cluster, "CREATE TABLE survivors (id int PRIMARY KEY, note text)")
    query(cluster, "INSERT INTO survivors VALUES (1, 'before restart')")


def test_restart_keeps_the_data(supervised: tuple[Supervisor, EmbeddedPostgres]) -> None:
    supervisor, cluster = supervised
    before = supervisor.wait_state("postgres", "RUNNING")
    assert "postgres: stopped" in supervisor.ctl("restart", "postgres")
    after = supervisor.wait_state("postgres", "RUNNING", not_pid=before)
    wait_for(lambda: connectable(cluster), 20, "PostgreSQL after restart")
    assert query(cluster, "SELECT note FROM survivors") == [("before restart",)]
    # a fast shutdown (stopsignal=INT) leaves a clean cluster: the log says so
    log = (cluster.pgdata.parent.parent / "logs" / "postgres.log").read_text()
    assert "received fast shutdown request" in log
    assert after != before


def test_kill_9_of_the_postmaster_is_recovered_with_data_intact(
    supervised: tuple[Supervisor, EmbeddedPostgres],
) -> None:
    supervisor, cluster = supervised
    pid = supervisor.wait_state("postgres", "RUNNING")
    assert pid is not None
    query(cluster, "INSERT INTO survivors VALUES (2, 'committed before kill -9')")
    os.kill(pid, signal.SIGKILL)
    new_pid = supervisor.wait_state("postgres", "RUNNING", timeout=55, not_pid=pid)
    wait_for(lambda: connectable(cluster), 20, "PostgreSQL after kill -9")
    assert query(cluster, "SELECT id, note FROM survivors ORDER BY id") == [
        (1, "before restart"),
        (2, "committed before kill -9"),
    ]
    pid_line = (cluster.pgdata / "postmaster.pid").read_text().splitlines()[0]
    assert int(pid_line) == new_pid  # the stale pid file was replaced


def test_the_doctor_says_to_start_a_stopped_postgres_program_not_the_appliance(
    supervised: tuple[Supervisor, EmbeddedPostgres],
) -> None:
    """After `ctl stop postgres` (or a crash past startretries) supervisord still runs: the fix is to start that
    program, not `make run`, which the running appliance's lock refuses on this storage."""
    supervisor, cluster = supervised
    supervisor.wait_state("postgres", "RUNNING")
    write_config(StorageLayout.from_env(supervisor.env).root)
    assert "postgres: stopped" in supervisor.ctl("stop", "postgres")
    try:
        doctor = subprocess.run(
            [PYTHON, "-c", "import sys; from appliance.ccb import main; sys.exit(main())", "doctor", "--json"],
            cwd=REPO,
            env=supervisor.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        supervisor.ctl("start", "postgres")
    checks = json.loads(doctor.stdout.strip().splitlines()[-1])["checks"]
    postgres = next(check for check in checks if check["name"] == "postgres")
    assert postgres["outcome"] == "fail", postgres
    assert postgres["fix"] == (
        "supervisord's program postgres is STOPPED: start it with `python -m appliance ctl start postgres`;"
        " `ccb logs postgres` says why it stopped"
    )
    supervisor.wait_state("postgres", "RUNNING")
    wait_for(lambda: connectable(cluster), 20, "PostgreSQL after the doctor's check")


def test_sigterm_to_supervisord_stops_postgres_and_exits_0(supervised: tuple[Supervisor, EmbeddedPostgres]) -> None:
    supervisor, cluster = supervised
    supervisor.wait_state("postgres", "RUNNING")
    children = descendants(supervisor.process.pid)
    assert any("postgres" in " ".join(child.cmdline()) for child in children)
    assert supervisor.stop() == 0
    assert alive(children) == []
    assert not (cluster.pgdata / "postmaster.pid").exists()
