"""The whole appliance as `make run` starts it (entrypoint.sh -> prepare -> supervisord -> postgres, embedder, app),
with handles to kill its programs the hard way and to read its database directly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import xmlrpc.client
from pathlib import Path
from typing import Any, cast

import httpx
import psutil
import psycopg
import yaml
from appliance_kit import REPO, alive, clean_env, descendants, wait_for
from contract_kit import APP_ID, APP_SECRET, APP_VERSION, signed_headers
from local_ports import free_port
from supervisor.xmlrpc import SupervisorTransport

from appliance.postgres import EmbeddedPostgres
from appliance.storage import StorageLayout

ENTRYPOINT = REPO / "entrypoint.sh"
HEALTHCHECK = REPO / "healthcheck" / "healthcheck"


def shipped_config(embedder_port: int) -> dict[str, Any]:
    """The shipped CPU config with the embedder on a free port and the extractive LLM (the cheapest /query).

    A lease shorter than the default 600 s: a killed app's claimed batch comes back in a test's lifetime
    (the lease's length is what bounds that wait; see embedding_worker.py).
    """
    config: dict[str, Any] = yaml.safe_load((REPO / "configs" / "config.cpu.yaml").read_text())
    config["embedding"].update(base_url=f"http://127.0.0.1:{embedder_port}/v1", port=embedder_port)
    config["llm"] = {"extractive": {}}
    config["embedding_worker"].update(lease_s=20, idle_poll_s=0.5)
    return config


class ApplianceStack:
    """./entrypoint.sh in the foreground on a private storage dir; `stop()` is SIGTERM, then kill of what is left."""

    def __init__(self, root: Path, config: dict[str, Any], secret: str | None = APP_SECRET) -> None:
        """`secret` None: started as `make run` without AppAPI (no APP_SECRET: the appliance generates one)."""
        self.storage = StorageLayout(root / "storage")
        self.storage.ensure()
        self.storage.config_file.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        identity = {"APP_ID": APP_ID, "APP_VERSION": APP_VERSION, "APP_PORT": str(self.port)}
        self.env = clean_env(self.storage.root, **identity, **({"APP_SECRET": secret} if secret else {}))
        self.cluster = EmbeddedPostgres(self.storage.pgdata, self.storage.pg_socket_dir)
        self.log_path = root / "entrypoint.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(ENTRYPOINT)], cwd=root, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )

    # --- supervisord ------------------------------------------------------------------------------------------

    def status(self) -> dict[str, tuple[str, int | None]]:
        """{program: (state, pid)} from supervisord's XML-RPC interface (what `supervisorctl status` reads)."""
        if self.process.poll() is not None:
            raise AssertionError(f"entrypoint.sh exited {self.process.returncode}:\n{self.output()[-3000:]}")
        try:
            infos = cast(list[dict[str, Any]], self._supervisor("getAllProcessInfo"))
        except OSError:  # supervisord not listening yet (or its socket not there yet)
            return {}
        return {info["name"]: (info["statename"], info["pid"] or None) for info in infos}

    def stop_program(self, program: str) -> None:
        """`supervisorctl stop`: the program stays down until start_program()."""
        self._supervisor("stopProcess", program)

    def start_program(self, program: str) -> None:
        self._supervisor("startProcess", program)

    def _supervisor(self, method: str, *args: str) -> object:
        socket = self.storage.run_dir / "supervisor.sock"
        transport = SupervisorTransport(None, None, f"unix://{socket}")
        try:
            proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
            return cast(object, getattr(proxy.supervisor, method)(*args))
        finally:
            transport.close()

    def pid(self, program: str) -> int:
        state, pid = self.status().get(program, ("", None))
        if state != "RUNNING" or pid is None:
            raise AssertionError(f"{program} is {state or 'unknown'}, not RUNNING")
        return pid

    def wait_running(self, program: str, timeout: float = 120, not_pid: int | None = None) -> int:
        """Wait until supervisord reports `program` RUNNING (with a pid other than `not_pid`); its pid."""
        found: list[int] = []

        def reached() -> bool:
            state, pid = self.status().get(program, ("", None))
            if state == "RUNNING" and pid is not None and pid != not_pid:
                found.append(pid)
                return True
            return False

        wait_for(reached, timeout, f"supervisord to report {program} RUNNING", interval=0.5)
        return found[-1]

    def kill9(self, program: str) -> int:
        """SIGKILL the program's main process (supervisord restarts it); the killed pid."""
        pid = self.pid(program)
        os.kill(pid, signal.SIGKILL)
        return pid

    def parse_worker_pids(self) -> list[int]:
        """The app's parse worker processes (children of hypercorn: multiprocessing spawn or `-m ...parse_worker`)."""
        found = []
        for child in descendants(self.wait_running("app")):
            with contextlib.suppress(psutil.NoSuchProcess):
                command = " ".join(child.cmdline())
                if "spawn_main" in command or "parse_worker" in command:
                    found.append(child.pid)
        return found

    # --- health -----------------------------------------------------------------------------------------------

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(HEALTHCHECK)], env=self.env, capture_output=True, text=True, timeout=60)

    def wait_healthy(self, timeout: float = 180) -> None:
        def healthy() -> bool:
            self.status()  # fails fast when the entrypoint died
            return self.healthcheck().returncode == 0

        try:
            wait_for(healthy, timeout, "the appliance's healthcheck to pass", interval=1.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.healthcheck().stdout}\n{self.output()[-3000:]}") from None

    def enable(self) -> None:
        """What AppAPI does once after installing the ExApp."""
        response = httpx.put(f"{self.base_url}/enabled?enabled=1", headers=signed_headers(), timeout=60)
        assert response.status_code == 200, response.text

    # --- the database, read directly --------------------------------------------------------------------------

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.cluster.dsn, connect_timeout=10, autocommit=True) as conn:
            return list(conn.execute(sql.encode(), params or None).fetchall())

    # --- logs and stop ----------------------------------------------------------------------------------------

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 90) -> int | None:
        """SIGTERM to entrypoint.sh (supervisord stops app, embedder, PostgreSQL); kill whatever is left after it."""
        children = descendants(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for left in alive(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(left.split()[0]), signal.SIGKILL)
        self._log.close()
        return self.process.returncode
