"""Helpers for the appliance tests: the CLI as a subprocess, a clean environment, free ports, process waiting."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import psutil
import psycopg
from local_ports import free_port as free_port  # re-exported for the tests of this folder
from waiting import wait_for as wait_for  # re-exported for the tests of this folder

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
FAKE_NVML_DIR = Path(__file__).resolve().parent / "fake_nvml"
# variables a developer's shell or AppAPI may set that would change what a test sees
_SCRUBBED = (
    "APP_ID",
    "APP_VERSION",
    "APP_SECRET",
    "APP_HOST",
    "APP_PORT",
    "APP_PERSISTENT_STORAGE",
    "APP_ROLE",
    "COMPUTE_DEVICE",
    "EXTERNAL_DB",
    "CC_CONFIG_PATH",
    "CC_EM_BASE_URL",
    "CC_EM_MODEL_NAME",
    "CC_EM_APIKEY",
    "HP_SHARED_KEY",
    "HP_FRP_ADDRESS",
    "HP_FRP_PORT",
    "PYTHONPATH",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
)


def clean_env(storage: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _SCRUBBED}
    env["APP_PERSISTENT_STORAGE"] = str(storage)
    env.update(extra)
    return env


def run_cli(*args: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "appliance", *args], cwd=REPO, env=dict(env), capture_output=True, text=True, timeout=timeout
    )


def write_config(storage: Path, variant: str = "cpu", embedder_port: int | None = None, workers: int = 1) -> Path:
    """The shipped template with the embedder moved to a free port (5000 may be taken on a shared machine)."""
    text = (REPO / "configs" / f"config.{variant}.yaml").read_text()
    port = embedder_port or free_port()
    text = text.replace("base_url: http://127.0.0.1:5000/v1", f"base_url: http://127.0.0.1:{port}/v1")
    text = text.replace("  port: 5000\n", f"  port: {port}\n").replace(
        "  workers: 1\n  chunk", f"  workers: {workers}\n  chunk"
    )
    storage.mkdir(parents=True, exist_ok=True)
    path = storage / "config.yaml"
    path.write_text(text)
    return path


def supervisor_status(output: str) -> dict[str, tuple[str, int | None]]:
    """`supervisorctl status` lines -> {program: (state, pid)}."""
    states: dict[str, tuple[str, int | None]] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        pid = None
        if len(parts) >= 4 and parts[2] == "pid":
            pid = int(parts[3].rstrip(","))
        states[parts[0]] = (parts[1], pid)
    return states


def supervisor_env(storage: Path, **extra: str) -> dict[str, str]:
    """What entrypoint.sh exports before supervisord: the AppAPI variables and launch.env's."""
    port = str(free_port())
    env = clean_env(
        storage,
        APP_HOST="127.0.0.1",
        APP_PORT=port,
        CCB_APP_BIND=f"127.0.0.1:{port}",
        CCB_RUN_DIR=str(storage / "run"),
        CCB_LOG_DIR=str(storage / "logs"),
        CCB_LOG_MAX_BYTES="20MB",
        CCB_LOG_BACKUPS="5",
        CCB_PYTHON=PYTHON,
        CCB_POSTGRES_AUTOSTART="true",
    )
    env.update(extra)
    return env


class Supervisor:
    """A real supervisord in the foreground, driven with supervisorctl over its unix socket."""

    def __init__(self, conf: Path, env: Mapping[str, str], log: Path) -> None:
        self.conf, self.env = conf, dict(env)
        self._log = log.open("wb")
        command = [PYTHON, "-m", "appliance.supervisord_json", "-n", "-c", str(conf)]
        self.process = subprocess.Popen(command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)
        wait_for(lambda: "postgres" in self.status() or self.process.poll() is not None, 30, "supervisord to answer")

    def ctl(self, *args: str) -> str:
        command = [PYTHON, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=90, cwd=REPO)
        return result.stdout

    def status(self) -> dict[str, tuple[str, int | None]]:
        return supervisor_status(self.ctl("status"))

    def wait_state(self, name: str, state: str, timeout: float = 45, not_pid: int | None = None) -> int | None:
        def reached() -> bool:
            current = self.status().get(name)
            return current is not None and current[0] == state and (not_pid is None or current[1] != not_pid)

        wait_for(reached, timeout, f"{name} to be {state}", interval=0.3)
        return self.status()[name][1]

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def alive(processes: list[psutil.Process]) -> list[str]:
    """Processes still running (zombies count as gone: nothing is left but a table entry)."""
    left = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return left


def run_as(user: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A command as another OS user (runuser, from root), as that user would run it itself."""
    return subprocess.run(
        ["runuser", "-u", user, "--", *command], capture_output=True, text=True, timeout=timeout, cwd="/"
    )


def connect_as(user: str, dsn: str) -> str:
    """psycopg.connect(dsn) from a forked child running as another OS user: 'connected' or the error message.

    Forked, not exec'd: the test's interpreter may sit where other users cannot run it (a pyenv under /root).
    """
    account = pwd.getpwnam(user)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to the user, try, report, exit without running the parent's cleanups
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            try:
                psycopg.connect(dsn, connect_timeout=5).close()
                message = "connected"
            except psycopg.Error as exc:
                message = str(exc)
            os.write(write_end, message.encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"the child as {user} failed before it could connect"
    return message


def root_owned_victim(directory: Path, name: str = "victim") -> Path:
    """A root-owned 0644 file an attacker would like root to overwrite or chown to them."""
    path = directory / name
    path.write_text("root's own file\n")
    os.chown(path, 0, 0)
    path.chmod(0o644)
    return path


def untouched(victim: Path) -> bool:
    info = victim.lstat()
    return (victim.read_text(), info.st_uid, info.st_gid, info.st_mode & 0o7777) == ("root's own file\n", 0, 0, 0o644)
