"""`prepare` per APP_ROLE: who runs the repairs and creates config.yaml, who waits for it, which programs start."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from appliance_kit import PYTHON, REPO, clean_env, run_cli, write_config
from waiting import wait_for

from appliance.app_role import AppRole
from appliance.config import load_config
from appliance.database_url import DatabaseTarget
from appliance.health import check_embedder
from appliance.launch import _check_socket_paths, launch_environment, read_launch_env
from appliance.postgres import EmbeddedPostgres
from appliance.storage import StorageLayout

# the roles that start the local embedder program (they embed passages or questions); written out, not derived
RUNS_EMBEDDER = {AppRole.NORMAL, AppRole.INDEXING, AppRole.REQUESTPROC, AppRole.EMBEDDING_WORKER}


def _external_db(cluster: EmbeddedPostgres) -> str:
    return f"postgresql+psycopg://ccb@/ccb?host={cluster.socket_dir}"


@pytest.mark.parametrize("role", list(AppRole))
def test_only_a_role_that_embeds_starts_the_local_embedder(role: AppRole, tmp_path: Path) -> None:
    layout = StorageLayout(tmp_path)
    config = load_config(REPO / "configs" / "config.cpu.yaml", environ={})
    target = DatabaseTarget("postgresql://ccb@db/ccb", False, "EXTERNAL_DB")
    launch = launch_environment(config, layout, target, layout.config_file, {"APP_ROLE": role.value})
    assert launch["CCB_EMBEDDER_AUTOSTART"] == ("true" if role in RUNS_EMBEDDER else "false")
    assert launch["CCB_POSTGRES_AUTOSTART"] == "false"
    # the health check does not wait for an embedder the role never starts
    skipped = check_embedder(config, 0.5, role).detail.startswith(f"skipped: APP_ROLE={role}")
    assert skipped == (role not in RUNS_EMBEDDER)


def test_a_replica_role_refuses_the_embedded_postgres(private_dir: Path) -> None:
    storage = private_dir / "storage"
    write_config(storage)
    result = run_cli("prepare", env=clean_env(storage, APP_ROLE="requestproc"))
    assert result.returncode == 1, result.stderr
    assert (
        "error: APP_ROLE=requestproc shares its database with the other replicas, and the embedded PostgreSQL runs"
        " only in the normal role: set EXTERNAL_DB to a PostgreSQL with pgvector that every replica reaches"
    ) in result.stderr


def test_a_waiting_role_fails_clearly_when_no_config_appears(private_dir: Path) -> None:
    storage = private_dir / "storage"
    result = run_cli("prepare", "--config-wait", "1", env=clean_env(storage, APP_ROLE="indexing"))
    assert result.returncode == 1, result.stderr
    assert "APP_ROLE=indexing does not create it: waiting up to 1 s for the requestproc or normal replica" in (
        result.stderr
    )
    assert (
        f"error: {storage / 'config.yaml'}: the config file did not appear within 1 s. APP_ROLE=indexing does not"
        " create it, the requestproc or normal replica does at start-up: start that replica first and give both"
        " the same persistent storage (APP_PERSISTENT_STORAGE, or CC_CONFIG_PATH)"
    ) in result.stderr
    assert not (storage / "config.yaml").exists()
    assert not (storage / "version.info").exists()  # no repairs ran


def test_a_waiting_role_continues_once_the_config_appears_and_runs_no_repairs(
    private_dir: Path, pg_cluster: EmbeddedPostgres
) -> None:
    storage = private_dir / "storage"
    env = clean_env(storage, APP_ROLE="updatesproc", EXTERNAL_DB=_external_db(pg_cluster))
    log = private_dir / "prepare.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PYTHON, "-m", "appliance", "prepare", "--config-wait", "120"], cwd=REPO, env=env, stderr=out
        )
        try:
            wait_for(lambda: "waiting up to 120 s" in log.read_text(), 60, "the wait's log line")
            assert process.poll() is None
            # as the requestproc replica writes it: complete, then renamed into place
            written = write_config(private_dir / "elsewhere")
            os.replace(written, storage / "config.yaml")
            assert process.wait(60) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    output = log.read_text()
    assert f"config file {storage / 'config.yaml'} found; continuing the start-up" in output
    assert "as APP_ROLE=updatesproc" in output and "repairs run: none, not this role" in output
    assert not (storage / "version.info").exists()
    launch = read_launch_env(StorageLayout(storage, "updatesproc").run_dir / "launch.env")
    assert (launch["CCB_POSTGRES_AUTOSTART"], launch["CCB_EMBEDDER_AUTOSTART"]) == ("false", "false")


def test_a_storage_path_too_long_for_supervisords_socket_is_refused_with_the_fix(private_dir: Path) -> None:
    storage = private_dir / ("s" * 60) / ("t" * 30)
    write_config(storage)
    result = run_cli(
        "prepare", env=clean_env(storage, APP_ROLE="embedding-worker", EXTERNAL_DB="postgresql://x@db/ccb")
    )
    assert result.returncode != 0
    socket = storage / "run" / "embedding-worker" / "supervisor.sock"
    length = len(f"{socket}.4194304")
    assert (
        f"supervisord's socket {socket}.<pid> can be {length} bytes long, and a unix socket path may have at most 107:"
        f" set APP_PERSISTENT_STORAGE to a path of at most {len(str(storage)) - (length - 107)} bytes"
    ) in result.stderr


# supervisord binds supervisor.sock.<pid> (up to 7 digits): such a storage passed a check of supervisor.sock alone,
# then supervisord stopped with "AF_UNIX path too long"
def test_a_storage_path_with_no_room_for_supervisords_pid_is_refused(private_dir: Path) -> None:
    storage = private_dir / ("s" * (85 - len(str(private_dir)) - 1))
    assert len(str(storage)) == 85
    write_config(storage)
    result = run_cli("prepare", env=clean_env(storage))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: supervisord's socket {storage}/run/supervisor.sock.<pid> can be 113 bytes long, and a unix socket"
        " path may have at most 107: set APP_PERSISTENT_STORAGE to a path of at most 79 bytes"
    )


def test_a_storage_path_of_the_longest_allowed_length_fits_every_socket(private_dir: Path) -> None:
    layout = StorageLayout(private_dir / ("s" * (79 - len(str(private_dir)) - 1)))
    _check_socket_paths(layout)
    for path in (layout.run_dir / "supervisor.sock.4194304", layout.pg_socket_dir / ".s.PGSQL.65535"):
        path.parent.mkdir(parents=True, exist_ok=True)
        with socket.socket(socket.AF_UNIX) as unix:
            unix.bind(str(path))  # the kernel takes it too
