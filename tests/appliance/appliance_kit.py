"""Helpers for the appliance tests: the CLI as a subprocess, a clean environment, free ports, process waiting."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

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
    "COMPUTE_DEVICE",
    "EXTERNAL_DB",
    "CC_CONFIG_PATH",
    "CC_EM_BASE_URL",
    "CC_EM_MODEL_NAME",
    "CC_EM_APIKEY",
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


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
