"""deploy/compose.yaml run as processes on this machine: each service's command with its environment, as its
containers would run them, with only what a container has of its own mapped to local things.

Mapped: the image's paths (/app = this checkout, its venv's bin first on PATH as the Dockerfile's ENV puts
/opt/venv/bin), each replica's port and persistent storage (free ones), bind-mounted files (their host path), the
hostnames of other services (127.0.0.1 and their local port) and the `db` service (a PostgreSQL the caller started).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from appliance_kit import clean_env
from compose_file import APP_IMAGE, REPO, ComposeService, DockerfileFacts, app_services
from local_ports import free_port
from server_process import ServerProcess
from waiting import wait_for

# the service PostgreSQL stands in for; its container is not run
DATABASE_SERVICE = "db"
# what each kind of service answers once it is up
_READY_PATH = {"app": "/heartbeat", "embedder": "/health"}


@dataclass
class Replica:
    """One container of a service, as a process."""

    service: ComposeService
    index: int
    port: int
    process: ServerProcess

    @property
    def name(self) -> str:
        return f"{self.service.name}-{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class ComposeProcesses:
    """Start with `start()`, stop every process (reverse order) with `stop()`; `replicas` per service name."""

    def __init__(self, services: Mapping[str, ComposeService], root: Path, database_url: str) -> None:
        self.services = services
        self.root = root
        self.database_url = database_url
        self.image = DockerfileFacts.read()
        self.apps = app_services(services)
        self.replicas: dict[str, list[Replica]] = {}
        # compose's service hostnames (host:container port) -> where this run serves them
        self._addresses: dict[str, str] = {}

    def start(self, timeout_s: float = 240) -> None:
        """The services our image serves besides the app roles (the embedder) first, as `depends_on:
        service_healthy` orders them, then the app replicas in file order (requestproc first); returns when each
        one answers. One at a time: seven start-ups at once on two shared cores take minutes, and compose's hosts
        do not share their cores with a test suite."""
        others = [s for s in self.services.values() if s.name != DATABASE_SERVICE and s not in self.apps]
        for service in [*others, *self.apps]:
            for index in range(1, service.replicas + 1):
                replica = self._launch(service, index)
                kind = "app" if service in self.apps else "embedder"
                wait_for(lambda r=replica, k=kind: self._answers(r, k), timeout_s, f"{replica.name} to answer")

    def _answers(self, replica: Replica, kind: str) -> bool:
        process = replica.process.process
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{replica.name} exited {process.returncode}:\n{replica.process.log_text()[-3000:]}")
        try:
            return httpx.get(replica.url + _READY_PATH[kind], timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def _launch(self, service: ComposeService, index: int) -> Replica:
        assert service.image == APP_IMAGE, f"{service.name}: only our image runs here, not {service.image}"
        port = free_port()
        storage = self.root / f"{service.name}-{index}"
        storage.mkdir()
        if service in self.apps:
            command, container_port = self.image.entrypoint, service.environment["APP_PORT"]
            environment = {**service.environment, "APP_HOST": "127.0.0.1", "APP_PORT": str(port)}
        else:
            assert service.entrypoint is not None and service.command is not None
            command, container_port = [*service.entrypoint, *service.command], _flag(service.command, "--port")
            command = _with_flag(_with_flag(command, "--host", "127.0.0.1"), "--port", str(port))
            environment = dict(service.environment)
        self._addresses[f"{service.name}:{container_port}"] = f"127.0.0.1:{port}"
        env = clean_env(storage, **{name: self._local(value) for name, value in environment.items()})
        if "EXTERNAL_DB" in environment:
            assert urlsplit(environment["EXTERNAL_DB"]).hostname == DATABASE_SERVICE, "EXTERNAL_DB names the db service"
            env["EXTERNAL_DB"] = self.database_url
        env["APP_PERSISTENT_STORAGE"] = str(storage)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        argv = [self._local_path(word) for word in command]
        argv = [sys.executable if word == "python" else word for word in argv]
        process = ServerProcess(argv, self.root / f"{service.name}-{index}.log", env=env, cwd=REPO)
        process.start(lambda: True)  # start() waits for readiness, failing fast when the process exits
        replica = Replica(service, index, port, process)
        self.replicas.setdefault(service.name, []).append(replica)
        return replica

    def _local(self, value: str) -> str:
        """An environment value with other services' addresses and mounted paths replaced by local ones."""
        for address, local in self._addresses.items():
            value = value.replace(f"//{address}", f"//{local}")
        return self._local_path(value)

    def _local_path(self, value: str) -> str:
        for service in self.apps:
            for target, source in service.bind_mounts.items():
                value = value.replace(target, str(source))
        workdir = self.image.workdir.rstrip("/") + "/"
        return str(REPO / value[len(workdir) :]) if value.startswith(workdir) else value

    def app_replicas(self) -> list[Replica]:
        return [replica for service in self.apps for replica in self.replicas.get(service.name, [])]

    def stop(self) -> dict[str, int | None]:
        """SIGTERM each (entrypoint.sh stops supervisord and its programs); each replica's exit code."""
        codes = {}
        for replicas in reversed(list(self.replicas.values())):
            for replica in replicas:
                replica.process.stop(timeout_s=90)
                process = replica.process.process
                codes[replica.name] = None if process is None else process.returncode
        return codes


def _flag(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def _with_flag(args: list[str], flag: str, value: str) -> list[str]:
    at = args.index(flag) + 1
    return [*args[:at], value, *args[at + 1 :]]
