"""entrypoint.sh as a real process, as the appliance tests start it: `Entrypoint`, and an appliance on the test's
external PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from appliance_kit import REPO, clean_env, descendants, free_port, run_cli, supervisor_status, wait_for, write_config

from appliance.postgres import EmbeddedPostgres
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


def storage_on_external_db(private_dir: Path, pg_cluster: EmbeddedPostgres) -> tuple[Path, str]:
    """A storage with the test config, and the URL of the test cluster as EXTERNAL_DB."""
    storage = private_dir / "storage"
    write_config(storage)
    return storage, f"postgresql+psycopg://ccb@/ccb?host={pg_cluster.socket_dir}"


def running_on_external_db(
    private_dir: Path, started: list[Entrypoint], pg_cluster: EmbeddedPostgres
) -> tuple[Path, str, Entrypoint]:
    """An appliance started on `storage_on_external_db` with --external-db, once its app runs."""
    storage, url = storage_on_external_db(private_dir, pg_cluster)
    run = Entrypoint(storage, "--external-db", url)
    started.append(run)
    run.wait_state("app", "RUNNING")
    return storage, url, run
