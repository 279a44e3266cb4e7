"""First start of the embedded cluster: built aside and renamed into place, so an interrupted initdb is harmless."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import psutil
import psycopg
from postgres_server import server_command
from psycopg.conninfo import conninfo_to_dict
from waiting import wait_for

from appliance.os_users import POSTGRES_USER
from appliance.postgres import EmbeddedPostgres, _clear_stale_lock


def test_leftover_of_an_interrupted_initdb_is_removed(private_dir: Path) -> None:
    cluster = EmbeddedPostgres(private_dir / "vector_db_data" / "pgsql", private_dir / "run")
    staging = private_dir / "vector_db_data" / "pgsql.initdb"
    staging.mkdir(parents=True)
    (staging / "PG_VERSION").write_text("18\n")  # what a killed initdb leaves behind
    assert cluster.ensure_initialised() is True
    assert not staging.exists()
    assert (cluster.pgdata / "PG_VERSION").read_text().strip() == "18"
    assert (cluster.pgdata / "base").is_dir()
    assert cluster.ensure_initialised() is False  # second call: nothing to do


def _pid_file(directory: Path, pid: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "postmaster.pid"
    path.write_text(f"{pid}\n/some/data\n1764582000\n5432\n")
    return path


def test_stale_pid_files_are_removed_and_a_live_postmasters_is_kept(
    private_dir: Path, pg_cluster: EmbeddedPostgres
) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        for name, pid in (("reused", sleeper.pid), ("self", os.getpid()), ("gone", dead.pid)):
            pid_file = _pid_file(private_dir / name, pid)
            _clear_stale_lock(pid_file)
            assert not pid_file.exists(), name
        postmaster = int((pg_cluster.pgdata / "postmaster.pid").read_text().splitlines()[0])
        live = _pid_file(private_dir / "live", postmaster)
        _clear_stale_lock(live)
        assert live.exists()  # a running postgres holds it: starting a second one must fail, not steal the dir
    finally:
        sleeper.kill()
        sleeper.wait()


# a storage path may hold any of these; pasted raw into the URL they broke it ('&', '=', space) or changed it ('%41')
AWKWARD_DIR_NAME = "a b&c=d%41ü"


def test_the_dsn_names_a_socket_dir_with_url_special_characters_exactly(private_dir: Path) -> None:
    socket_dir = private_dir / AWKWARD_DIR_NAME / "pg_socket"
    for tcp_port in (None, 5433):
        params = conninfo_to_dict(EmbeddedPostgres(private_dir / "pgsql", socket_dir, tcp_port).dsn)
        assert params["host"] == str(socket_dir)
        assert (params["dbname"], params["user"], params.get("port")) == ("ccb", "ccb", tcp_port and str(tcp_port))


def test_an_embedded_postgres_under_an_awkward_storage_path_is_reachable(private_dir: Path) -> None:
    storage = private_dir / AWKWARD_DIR_NAME
    cluster = EmbeddedPostgres(storage / "vector_db_data" / "pgsql", storage / "pg_socket")
    cluster.ensure_initialised()
    server = subprocess.Popen(server_command(cluster), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(cluster.dsn), 30, "PostgreSQL under a path with a space, '&', '=' and '%'")
        with psycopg.connect(cluster.dsn) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("ccb",)
    finally:
        server.terminate()
        server.wait(timeout=20)


def _answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _server_user_command(*command: str) -> list[str]:
    """`command` as the OS user the server runs as: the PostgreSQL user under root, else this one."""
    if os.geteuid() != 0:
        return list(command)
    user = POSTGRES_USER.name
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]


def test_a_start_after_a_host_crash_whose_old_pid_was_reused_is_not_blocked_by_the_socket_lock(
    private_dir: Path,
) -> None:
    cluster = EmbeddedPostgres(private_dir / "pgsql", private_dir / "pg_socket")
    cluster.ensure_initialised()
    crashed = subprocess.Popen(server_command(cluster), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _answers(cluster.dsn), 30, "the first PostgreSQL")
    # a host crash: the postmaster and every backend die at once, their lock files stay
    processes = [psutil.Process(crashed.pid), *psutil.Process(crashed.pid).children(recursive=True)]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):  # a backend may end first, seeing its postmaster gone
            process.kill()
    psutil.wait_procs(processes, timeout=20)
    crashed.wait()
    lock_files = (cluster.pgdata / "postmaster.pid", cluster.socket_dir / ".s.PGSQL.5432.lock")
    assert all(path.exists() for path in lock_files)
    # after the reboot the old postmaster's pid belongs to another process of the same user (the embedder, say)
    reused = subprocess.Popen(_server_user_command("sleep", "60"))
    try:
        for path in lock_files:
            lines = path.read_text().splitlines()
            path.write_text("\n".join([str(reused.pid), *lines[1:]]) + "\n")
        server = subprocess.Popen(server_command(cluster), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: _answers(cluster.dsn) or server.poll() is not None, 30, "the second PostgreSQL")
            assert server.poll() is None, "PostgreSQL refused to start over the stale socket lock file"
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGINT)
                server.wait(timeout=20)
    finally:
        reused.kill()
        reused.wait()
