"""entrypoint.sh as a real process: flags, config copy, external DB, a second start, roles, a uid without a passwd
entry, HaRP."""

from __future__ import annotations

import os
import pwd
import socket as socket_module
import subprocess
from pathlib import Path

import pytest
from appliance_kit import (
    PYTHON,
    clean_env,
    free_port,
    run_cli,
    wait_for,
    write_config,
)
from entrypoint_kit import (
    CPU,
    ENTRYPOINT,
    GPU,
    Entrypoint,
    running_on_external_db,
    storage_on_external_db,
)

from appliance.app_client import AppClient, AppClientError, AppTarget
from appliance.postgres import EmbeddedPostgres
from appliance.storage import StorageLayout


def test_ctl_without_a_running_appliance_says_what_to_do(private_dir: Path) -> None:
    result = run_cli("ctl", "status", env=clean_env(private_dir))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {private_dir}/run/launch.env is missing; start the appliance first (./entrypoint.sh or make run)"
    )
    assert PYTHON


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
    storage, _url, run = running_on_external_db(private_dir, started, pg_cluster)
    assert run.status()["postgres"][0] == "STOPPED"
    assert (storage / "db_url").read_text() == f"postgresql://ccb@/ccb?host={pg_cluster.socket_dir}\n"
    assert not (storage / "vector_db_data" / "pgsql" / "PG_VERSION").exists()
    wait_for(lambda: run.healthcheck().returncode == 0, 45, "healthcheck against the external database")
    assert run.terminate() == 0


@pytest.mark.slow
def test_a_second_start_on_a_running_storage_fails_at_once_and_changes_nothing(
    private_dir: Path, started: list[Entrypoint], pg_cluster: EmbeddedPostgres
) -> None:
    storage, url, first = running_on_external_db(private_dir, started, pg_cluster)
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
    storage, url, first = running_on_external_db(private_dir, started, pg_cluster)
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
    storage, url = storage_on_external_db(private_dir, pg_cluster)
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
    storage, url = storage_on_external_db(private_dir, pg_cluster)
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
