"""entrypoint.sh as a real process at its stop: SIGTERM and Ctrl-C at each stage, `docker stop`, `kill -9` of
supervisord, a second start on its data."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from appliance_kit import (
    REPO,
    alive,
    clean_env,
    descendants,
    free_port,
    wait_for,
    write_config,
)
from entrypoint_kit import (
    DOCKER_STOP_TIMEOUT_S,
    ENTRYPOINT,
    HEALTHCHECK,
    Entrypoint,
)

from appliance.postgres import EmbeddedPostgres, pg_bin_dir
from appliance.storage import StorageLayout


@pytest.fixture(scope="module")
def shared_storage() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ccb-ep-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_whole_stack_runs_is_healthy_and_sigterm_leaves_nothing(
    shared_storage: Path, started: list[Entrypoint]
) -> None:
    storage = shared_storage / "storage"
    write_config(storage)
    # a relative APP_PERSISTENT_STORAGE is relative to where the caller stands
    secret = "app-secret-for-the-app-only"
    run = Entrypoint(storage, cwd=shared_storage, APP_PERSISTENT_STORAGE="storage", APP_SECRET=secret)
    started.append(run)
    for program in ("postgres", "embedder", "app"):
        run.wait_state(program, "RUNNING")
    # supervisord hands its whole environment to every program; the embedder is started with an allow-list
    pids = {program: run.status()[program][1] for program in ("app", "embedder")}
    assert secret.encode() in Path(f"/proc/{pids['app']}/environ").read_bytes()
    assert secret.encode() not in Path(f"/proc/{pids['embedder']}/environ").read_bytes()
    wait_for(lambda: run.healthcheck().returncode == 0, 45, "healthcheck to pass")
    health = run.healthcheck()
    assert [line.split(":")[0] for line in health.stdout.splitlines()] == ["app", "postgres", "embedder"]
    with urllib.request.urlopen(f"http://127.0.0.1:{run.env['APP_PORT']}/heartbeat", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    assert (storage / "logs" / "app.log").exists() and (storage / "logs" / "supervisord.log").exists()

    cluster = EmbeddedPostgres(StorageLayout(storage).pgdata, StorageLayout(storage).pg_socket_dir)
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE keepsake (note text)")
        conn.execute("INSERT INTO keepsake VALUES ('from the first run')")

    children = descendants(run.process.pid)
    assert len(children) >= 4  # postgres (+ its workers), embedder, hypercorn (+ worker)
    assert run.terminate() == 0
    assert alive(children) == []
    assert not (StorageLayout(storage).pgdata / "postmaster.pid").exists()
    assert "database system is shut down" in (storage / "logs" / "postgres.log").read_text()


@pytest.mark.slow
def test_second_start_finds_its_data_and_kill_9_of_supervisord_leaves_nothing(
    shared_storage: Path, started: list[Entrypoint]
) -> None:
    storage = shared_storage / "storage"
    if not (storage / "version.info").exists():
        pytest.fail("needs the storage of test_whole_stack_runs_is_healthy_and_sigterm_leaves_nothing")
    run = Entrypoint(storage)
    started.append(run)
    run.wait_state("postgres", "RUNNING")
    assert "repairs run: 0" in run.output  # version.info = APP_VERSION+ from the first start
    cluster = EmbeddedPostgres(StorageLayout(storage).pgdata, StorageLayout(storage).pg_socket_dir)
    wait_for(lambda: _can_connect(cluster.dsn), 20, "PostgreSQL on the second start")
    with psycopg.connect(cluster.dsn) as conn:
        assert conn.execute("SELECT note FROM keepsake").fetchall() == [("from the first run",)]
    for program in ("embedder", "app"):
        run.wait_state(program, "RUNNING")
    # supervisord killed outright (kill -9, the OOM killer): its programs get their stop signal from the kernel
    children = descendants(run.process.pid)
    assert len(children) >= 4
    run.process.kill()
    run.process.wait()
    wait_for(lambda: alive(children) == [], 60, "every program of the killed supervisord to stop")
    assert not (StorageLayout(storage).pgdata / "postmaster.pid").exists()  # a fast shutdown, not a crash


def _can_connect(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.mark.slow
def test_docker_stop_leaves_postgres_shut_down_cleanly_when_the_app_overruns_its_stop(
    private_dir: Path, started: list[Entrypoint]
) -> None:
    storage = private_dir / "storage"
    write_config(storage)
    run = Entrypoint(storage)
    started.append(run)
    for program in ("postgres", "embedder", "app"):
        run.wait_state(program, "RUNNING")
    # an app that does not end at its SIGTERM (during an ingest on 2 cores it needed 11 s); PostgreSQL stops last
    app_pid = run.status()["app"][1]
    assert app_pid is not None
    os.kill(app_pid, signal.SIGSTOP)
    run.process.send_signal(signal.SIGTERM)
    try:
        assert run.process.wait(DOCKER_STOP_TIMEOUT_S) == 0
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {DOCKER_STOP_TIMEOUT_S} s after SIGTERM, when Docker kills PostgreSQL as well")
    control = subprocess.run(
        [str(pg_bin_dir() / "pg_controldata"), str(StorageLayout(storage).pgdata)],
        capture_output=True,
        text=True,
        env={"LC_ALL": "C"},
        check=True,
    )
    # the next start needs no crash recovery
    assert re.search(r"^Database cluster state: +shut down$", control.stdout, re.M), control.stdout
    assert "database system is shut down" in (storage / "logs" / "postgres.log").read_text()


@pytest.mark.slow
def test_sigterm_to_make_run_leaves_no_process_behind(private_dir: Path) -> None:
    storage = private_dir / "storage"
    write_config(storage)
    port = free_port()
    env = clean_env(storage, APP_PORT=str(port))
    tool_env = dict(env)
    log = (private_dir / "make.log").open("wb")
    # -o: treat the install stamp as up to date, so the test never reinstalls packages
    make = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "run"], cwd=REPO, env=env, stdout=log, stderr=log
    )
    try:
        wait_for(
            lambda: subprocess.run([str(HEALTHCHECK)], env=tool_env, capture_output=True, timeout=60).returncode == 0,
            50,
            "the appliance started by make run to be healthy",
            interval=0.5,
        )
        children = descendants(make.pid)
        make.send_signal(signal.SIGTERM)
        make.wait(60)  # make forwards SIGTERM to its child, waits for it, then dies of the signal itself
        assert alive(children) == []
        assert "stopped: postgres (exit status 0)" in (private_dir / "make.log").read_text()
    finally:
        if make.poll() is None:
            for child in descendants(make.pid):
                child.kill()
            make.kill()
        log.close()


@pytest.mark.slow
def test_ctrl_c_stops_everything_and_exits_0(private_dir: Path) -> None:
    storage = private_dir / "storage"
    write_config(storage)
    env = clean_env(storage, APP_PORT=str(free_port()))
    log = (private_dir / "entrypoint.log").open("wb")
    # its own process group, like a shell's foreground job: Ctrl-C = SIGINT to the whole group
    process = subprocess.Popen([str(ENTRYPOINT)], env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        wait_for(
            lambda: subprocess.run([str(HEALTHCHECK)], env=env, capture_output=True, timeout=60).returncode == 0,
            50,
            "the appliance to be healthy",
            interval=0.5,
        )
        children = descendants(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(60) == 0
        assert alive(children) == []
    finally:
        if process.poll() is None:
            for child in descendants(process.pid):
                child.kill()
            process.kill()
        log.close()


def test_sigterm_while_preparing_exits_0_and_leaves_nothing(private_dir: Path) -> None:
    env = clean_env(private_dir / "storage", APP_PORT=str(free_port()))
    process = subprocess.Popen([str(ENTRYPOINT)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _preparing(process.pid), 30, "entrypoint.sh to start prepare", interval=0.01)
        children = descendants(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        wait_for(lambda: alive(children) == [], 10, "prepare to be gone")
    finally:
        if process.poll() is None:
            for child in descendants(process.pid):
                child.kill()
            process.kill()


# an `id` on PATH that, the first time entrypoint.sh asks it for the user name (after prepare, before the exec into


# an `id` on PATH that, the first time entrypoint.sh asks it for the user name (after prepare, before the exec into
# supervisord), sends SIGTERM to the entrypoint: a stop that lands exactly in that stretch
SIGNALLING_ID = """#!/bin/sh
if [ "$1" = "-un" ] && [ ! -e "$SIGNALLED" ]; then
    : > "$SIGNALLED"
    kill -TERM "$(cat "$ENTRYPOINT_PID_FILE")"
fi
exec /usr/bin/id "$@"
"""


def test_sigterm_after_prepare_before_supervisord_exits_0(private_dir: Path) -> None:
    storage = private_dir / "storage"
    write_config(storage)
    bin_dir = private_dir / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").write_text(SIGNALLING_ID)
    (bin_dir / "id").chmod(0o755)
    pid_file = private_dir / "entrypoint.pid"
    env = clean_env(
        storage,
        APP_PORT=str(free_port()),
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        SIGNALLED=str(private_dir / "signalled"),
        ENTRYPOINT_PID_FILE=str(pid_file),
    )
    process = subprocess.Popen([str(ENTRYPOINT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        pid_file.write_text(f"{process.pid}\n")
        output = process.communicate(timeout=60)[0].decode(errors="replace")
        assert (private_dir / "signalled").exists(), output
        assert process.returncode == 0, output
        assert "supervisord started" not in output
    finally:
        if process.poll() is None:
            for child in descendants(process.pid):
                child.kill()
            process.kill()


def _preparing(pid: int) -> bool:
    """prepare has started (or already finished and supervisord took over): the trap is in place either way."""
    for child in descendants(pid):
        try:
            if "prepare" in child.cmdline():
                return True
        except psutil.NoSuchProcess:
            pass
    try:
        return "appliance.supervisord_json" in psutil.Process(pid).cmdline()
    except psutil.NoSuchProcess:
        return False
