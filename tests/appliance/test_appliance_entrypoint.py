"""entrypoint.sh as a real process: flags, the whole stack under supervisord, SIGTERM, a second start on its data."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket as socket_module
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil
import psycopg
import pytest
from appliance_kit import (
    PYTHON,
    REPO,
    alive,
    clean_env,
    descendants,
    free_port,
    run_cli,
    supervisor_status,
    wait_for,
    write_config,
)

from appliance.app_client import AppClient, AppClientError, AppTarget
from appliance.postgres import EmbeddedPostgres, pg_bin_dir
from appliance.storage import StorageLayout

ENTRYPOINT = REPO / "entrypoint.sh"
HEALTHCHECK = REPO / "healthcheck" / "healthcheck"
CPU = (REPO / "configs" / "config.cpu.yaml").read_text()
# `docker stop` (AppAPI's too) sends SIGTERM, then SIGKILL to every process of the container after this long
DOCKER_STOP_TIMEOUT_S = 10
GPU = (REPO / "configs" / "config.gpu.yaml").read_text()


class Entrypoint:
    """./entrypoint.sh running in the foreground, as `make run` starts it."""

    def __init__(
        self, storage: Path, *args: str, cwd: Path | None = None, as_user: Sequence[str] = (), **env: str
    ) -> None:
        self.storage = storage
        self.as_user = list(as_user)  # a command prefix that starts the entrypoint and the healthcheck as another user
        self.env = clean_env(storage, APP_PORT=str(free_port()), **env)
        self.tool_env = dict(self.env, APP_PERSISTENT_STORAGE=str(storage))  # for tools run from elsewhere
        self.log_path = storage.parent / f"entrypoint-{free_port()}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*self.as_user, str(ENTRYPOINT), *args],
            cwd=cwd or storage.parent,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict[str, tuple[str, int | None]]:
        if not (StorageLayout.from_env(self.tool_env).run_dir / "supervisor.sock").exists():
            return {}
        states: dict[str, tuple[str, int | None]] = supervisor_status(
            run_cli("ctl", "status", env=self.tool_env, timeout=30).stdout
        )
        return states

    def wait_state(self, name: str, state: str, timeout: float = 45) -> None:
        def reached() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"entrypoint exited {self.process.returncode}:\n{self.output[-3000:]}")
            return self.status().get(name, ("", None))[0] == state

        wait_for(reached, timeout, f"{name} {state}", interval=0.5)

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        command = [*self.as_user, str(HEALTHCHECK)]
        return subprocess.run(command, env=self.tool_env, capture_output=True, text=True, timeout=60)

    def terminate(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            for child in descendants(self.process.pid):
                child.kill()
            self.process.kill()
            self.process.wait()
        self._log.close()


def _storage_on_external_db(private_dir: Path, pg_cluster: EmbeddedPostgres) -> tuple[Path, str]:
    """A storage with the test config, and the URL of the test cluster as EXTERNAL_DB."""
    storage = private_dir / "storage"
    write_config(storage)
    return storage, f"postgresql+psycopg://ccb@/ccb?host={pg_cluster.socket_dir}"


def _running_on_external_db(
    private_dir: Path, started: list[Entrypoint], pg_cluster: EmbeddedPostgres
) -> tuple[Path, str, Entrypoint]:
    """An appliance started on `_storage_on_external_db` with --external-db, once its app runs."""
    storage, url = _storage_on_external_db(private_dir, pg_cluster)
    run = Entrypoint(storage, "--external-db", url)
    started.append(run)
    run.wait_state("app", "RUNNING")
    return storage, url, run


@pytest.fixture
def started(private_dir: Path) -> Iterator[list[Entrypoint]]:
    """Entrypoints a test starts; any still running at the end are killed with their children."""
    runs: list[Entrypoint] = []
    yield runs
    for run in runs:
        run.kill()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "entrypoint.sh: unknown argument '--bogus'"),
        (["--device", "tpu"], "entrypoint.sh: --device must be auto, cpu or cuda, not 'tpu'"),
        (["--device"], "entrypoint.sh: --device needs a value"),
        (["--external-db"], "entrypoint.sh: --external-db needs a URL"),
    ],
)
def test_bad_flag_prints_usage_and_exits_2(private_dir: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [str(ENTRYPOINT), *args], env=clean_env(private_dir / "storage"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == message
    assert result.stderr.splitlines()[1].startswith("usage: entrypoint.sh [--device auto|cpu|cuda] [--reset-config]")
    assert not (private_dir / "storage").exists()  # nothing was prepared


def test_help_exits_0(private_dir: Path) -> None:
    result = subprocess.run([str(ENTRYPOINT), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "--external-db URL" in result.stdout


def test_prepare_failure_aborts_start_up(private_dir: Path) -> None:
    storage = private_dir / "storage"
    storage.mkdir()
    (storage / "config.yaml").write_text("retrieval:\n  rrf_k: -1\n")
    result = subprocess.run([str(ENTRYPOINT)], env=clean_env(storage), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert (
        f"error: {storage}/config.yaml: 'retrieval.rrf_k': Input should be greater than or equal to 1" in result.stderr
    )
    assert result.stderr.strip().splitlines()[-1].startswith("entrypoint.sh: start-up aborted")


@pytest.mark.parametrize("args", [["--device", "CPU"], ["--device=Cuda"]])
def test_the_device_flag_is_read_in_any_case(private_dir: Path, args: list[str]) -> None:
    # a config that stops prepare right after the probe: the start gets that far, past the flag check
    storage = private_dir / "storage"
    storage.mkdir()
    (storage / "config.yaml").write_text("retrieval:\n  rrf_k: -1\n")
    result = subprocess.run(
        [str(ENTRYPOINT), *args], env=clean_env(storage), capture_output=True, text=True, timeout=60
    )
    device = args[-1].rpartition("=")[2].lower()
    assert f"compute device {device} (config {'cpu' if device == 'cpu' else 'gpu'}): --device={device}" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("entrypoint.sh: start-up aborted (python -m appliance")


@pytest.mark.slow
def test_device_flags_pick_the_config_and_reset_config_recopies(private_dir: Path, started: list[Entrypoint]) -> None:
    storage = private_dir / "storage"
    started.append(Entrypoint(storage, "--device", "cuda"))
    started[-1].wait_state("postgres", "RUNNING")
    assert (storage / "config.yaml").read_text() == GPU
    assert "device cuda (--device=cuda overrides the probe)" in started[-1].output
    assert started[-1].terminate() == 0

    started.append(Entrypoint(storage, "--reset-config", "--device=cpu"))
    started[-1].wait_state("postgres", "RUNNING")
    assert (storage / "config.yaml").read_text() == CPU
    assert (storage / "config.yaml.bak").read_text() == GPU
    assert started[-1].terminate() == 0


@pytest.mark.slow
def test_external_db_skips_the_embedded_postgres(
    private_dir: Path, started: list[Entrypoint], pg_cluster: EmbeddedPostgres
) -> None:
    storage, _url, run = _running_on_external_db(private_dir, started, pg_cluster)
    assert run.status()["postgres"][0] == "STOPPED"
    assert (storage / "db_url").read_text() == f"postgresql://ccb@/ccb?host={pg_cluster.socket_dir}\n"
    assert not (storage / "vector_db_data" / "pgsql" / "PG_VERSION").exists()
    wait_for(lambda: run.healthcheck().returncode == 0, 45, "healthcheck against the external database")
    assert run.terminate() == 0


@pytest.mark.slow
def test_a_second_start_on_a_running_storage_fails_at_once_and_changes_nothing(
    private_dir: Path, started: list[Entrypoint], pg_cluster: EmbeddedPostgres
) -> None:
    storage, url, first = _running_on_external_db(private_dir, started, pg_cluster)
    written = {name: (storage / name).read_bytes() for name in ("run/launch.env", "db_url", "config.yaml")}
    second = Entrypoint(storage, "--external-db", url)  # another APP_PORT
    started.append(second)
    assert second.process.wait(60) == 1
    assert (
        f"error: another appliance runs on this storage (pid {first.process.pid}): {storage}/run is in use; stop it"
        " first, or give this one its own APP_PERSISTENT_STORAGE"
    ) in second.output
    assert {name: (storage / name).read_bytes() for name in written} == written
    wait_for(lambda: first.healthcheck().returncode == 0, 45, "the first appliance's healthcheck")
    assert first.terminate() == 0


@pytest.mark.slow
def test_the_storage_stays_locked_through_a_supervisorctl_reload(
    private_dir: Path, started: list[Entrypoint], pg_cluster: EmbeddedPostgres
) -> None:
    storage, url, first = _running_on_external_db(private_dir, started, pg_cluster)
    first.wait_state("app", "RUNNING")
    app_pid = first.status()["app"][1]
    # supervisord closes its inherited descriptors before it reads its config again; the lock's was one of them
    run_cli("ctl", "reload", env=first.tool_env, timeout=30)
    wait_for(lambda: first.status().get("app") not in (None, ("RUNNING", app_pid)), 60, "supervisord to reload")
    first.wait_state("app", "RUNNING", 60)
    second = Entrypoint(storage, "--external-db", url)
    started.append(second)
    assert second.process.wait(60) == 1
    assert "error: another appliance runs on this storage" in second.output
    assert first.terminate() == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("role", "embedder", "loops"),
    [
        ("updatesproc", "STOPPED", {"event_loop_lag"}),
        # the shipped config's cross-lingual leg fills in its vectors where chunks are embedded
        (
            "embedding-worker",
            "RUNNING",
            {"event_loop_lag", "embedding_worker_0", "embedding_worker_listen", "cross-lingual-backfill"},
        ),
    ],
)
def test_a_replica_role_runs_only_its_programs_and_loops(
    role: str,
    embedder: str,
    loops: set[str],
    private_dir: Path,
    started: list[Entrypoint],
    pg_cluster: EmbeddedPostgres,
) -> None:
    storage, url = _storage_on_external_db(private_dir, pg_cluster)
    run = Entrypoint(storage, APP_ROLE=role, EXTERNAL_DB=url)
    started.append(run)
    run.wait_state("app", "RUNNING")
    wait_for(lambda: run.healthcheck().returncode == 0, 60, f"healthcheck of the {role} replica")
    programs = {name: state for name, (state, _pid) in run.status().items()}
    assert programs == {"postgres": "STOPPED", "embedder": embedder, "app": "RUNNING", "frpc": "STOPPED"}
    with AppClient(AppTarget.from_env(run.tool_env), timeout_s=30) as app:
        status = app.status()
    assert status["role"]["name"] == role
    # every role also follows the shared enabled flag (services/shared_enabled.py) and has opened its engine
    assert set(status["loops"]) == loops | {"enabled_sync", "engine_opening"}
    assert status["loops"]["engine_opening"]["state"] == "opened"
    assert run.terminate() == 0


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


def test_ctl_without_a_running_appliance_says_what_to_do(private_dir: Path) -> None:
    result = run_cli("ctl", "status", env=clean_env(private_dir))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {private_dir}/run/launch.env is missing; start the appliance first (./entrypoint.sh or make run)"
    )
    assert PYTHON


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
# supervisord), sends SIGTERM to the entrypoint: a stop that lands exactly in that stretch
SIGNALLING_ID = """#!/bin/sh
if [ "$1" = "-un" ] && [ ! -e "$SIGNALLED" ]; then
    : > "$SIGNALLED"
    kill -TERM "$(cat "$ENTRYPOINT_PID_FILE")"
fi
exec /usr/bin/id "$@"
"""


NAMELESS_ID = """#!/bin/sh
# `id` for a uid without a passwd entry, as `docker run --user 12345` starts the entrypoint
case "$1" in
-un) echo "id: cannot find name for user ID 12345" >&2; exit 1 ;;
-u) echo 12345 ;;
*) exec /usr/bin/id "$@" ;;
esac
"""


@pytest.mark.slow
def test_a_uid_without_a_passwd_entry_starts_supervisord(private_dir: Path, started: list[Entrypoint]) -> None:
    storage = private_dir / "storage"
    write_config(storage)
    bin_dir = private_dir / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").write_text(NAMELESS_ID)
    (bin_dir / "id").chmod(0o755)
    started.append(Entrypoint(storage, PATH=f"{bin_dir}:{os.environ['PATH']}"))
    # supervisord refused user=12345 ("Invalid user id 12345") and the start ended before any program ran
    started[-1].wait_state("postgres", "RUNNING")
    assert "Invalid user id" not in started[-1].output
    assert started[-1].terminate() == 0


# `docker run --user 12345` (OpenShift's random uid): no passwd entry, group root; CAP_DAC_READ_SEARCH only lets it
# reach the test's interpreter, which may sit under root's 0700 home (a pyenv)
NAMELESS_UID = 12345
AS_NAMELESS_UID = [
    "setpriv",
    f"--reuid={NAMELESS_UID}",
    "--regid=0",
    "--clear-groups",
    "--inh-caps=+dac_read_search",
    "--ambient-caps=+dac_read_search",
]


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: starts the appliance as a uid without a passwd entry")
def test_a_uid_without_a_passwd_entry_runs_the_embedded_postgresql(
    private_dir: Path, started: list[Entrypoint]
) -> None:
    with pytest.raises(KeyError):
        pwd.getpwuid(NAMELESS_UID)
    assert list(Path("/usr/lib").glob("*/libnss_wrapper.so")), "libnss-wrapper is missing: run 'make nss-wrapper'"
    private_dir.chmod(0o755)
    storage = private_dir / "storage"
    write_config(storage)
    for path in (storage, storage / "config.yaml"):
        os.chown(path, NAMELESS_UID, 0)
    # bash's `command -v` checks with access(2), which ignores that capability: a python3 on PATH it can see
    bin_dir = private_dir / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec {PYTHON} "$@"\n')
    (bin_dir / "python3").chmod(0o755)
    run = Entrypoint(storage, as_user=AS_NAMELESS_UID, PATH=f"{bin_dir}:{os.environ['PATH']}")
    started.append(run)
    # initdb refused to run: "could not look up effective user ID 12345: user does not exist"
    run.wait_state("app", "RUNNING", timeout=90)
    # Docker's HEALTHCHECK runs as the container's uid in the image's environment: without the entrypoint's exports
    wait_for(lambda: run.healthcheck().returncode == 0, 60, "healthcheck as the nameless uid to pass")
    assert run.status()["postgres"][0] == "RUNNING"
    assert run.terminate() == 0


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


@pytest.mark.slow
def test_behind_harp_the_app_listens_on_its_socket_and_the_health_check_watches_frpc(
    private_dir: Path, started: list[Entrypoint]
) -> None:
    storage = private_dir / "storage"
    write_config(storage)
    # frpc is not installed here (no registry this machine reaches ships it): an executable of that name that fails
    bin_dir = private_dir / "bin"
    bin_dir.mkdir()
    (bin_dir / "frpc").write_text("#!/bin/sh\necho 'frpc: cannot run here' >&2\nexit 1\n")
    (bin_dir / "frpc").chmod(0o755)
    socket = private_dir / "exapp.sock"
    run = Entrypoint(
        storage,
        HP_SHARED_KEY="harp-shared-key-0123",
        HP_FRP_ADDRESS="127.0.0.1",
        HP_FRP_PORT=str(free_port()),
        HP_EXAPP_SOCK=str(socket),
        PATH=f"{bin_dir}:{os.environ['PATH']}",
    )
    started.append(run)
    run.wait_state("app", "RUNNING")
    target = AppTarget.from_env(run.tool_env)
    assert target.socket == str(socket)
    with AppClient(target, timeout_s=30) as app:
        wait_for(lambda: _answers(app), 60, "the app on its socket")
        assert app.call("GET", "/enabled") == {"enabled": True}  # a signed call; standalone starts enabled
    port = int(run.env["APP_PORT"])
    with pytest.raises(ConnectionRefusedError):  # HaRP's listener may hold APP_PORT on a host network
        socket_module.create_connection(("127.0.0.1", port), timeout=5).close()
    # app, PostgreSQL and embedder are up; only the tunnel is missing, and the health check says so
    wait_for(lambda: run.healthcheck().stderr.strip() == "unhealthy: frpc", 90, "the health check to name frpc alone")
    assert run.status()["frpc"][0] != "RUNNING"  # STARTING, BACKOFF and at last FATAL: it exits at once
    assert "harp-shared-key-0123" not in run.output
    assert run.terminate() == 0


def _answers(app: AppClient) -> bool:
    try:
        app.heartbeat()
    except AppClientError:
        return False
    return True


@pytest.mark.slow
def test_two_roles_on_one_volume_as_appapi_deploys_them_on_kubernetes(
    private_dir: Path, started: list[Entrypoint], pg_cluster: EmbeddedPostgres
) -> None:
    storage, url = _storage_on_external_db(private_dir, pg_cluster)
    roles = ("requestproc", "updatesproc")
    runs = [Entrypoint(storage, APP_ROLE=role, EXTERNAL_DB=url) for role in roles]
    started.extend(runs)
    for run, role in zip(runs, roles, strict=True):
        # each pod's supervisord, launch env and logs under its role: one socket path would stop the second
        run.wait_state("app", "RUNNING")
        layout = StorageLayout.from_env(run.tool_env)
        assert (layout.run_dir, layout.log_dir) == (storage / "run" / role, storage / "logs" / role)
        assert (layout.run_dir / "launch.env").exists() and (layout.log_dir / "app.log").exists()
        wait_for(lambda run=run: run.healthcheck().returncode == 0, 60, f"healthcheck of the {role} replica")
    assert {name: state for name, (state, _pid) in runs[1].status().items()}["embedder"] == "STOPPED"
    assert [run.terminate() for run in runs] == [0, 0]
