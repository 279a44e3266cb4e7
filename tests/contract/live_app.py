"""The real app server for tests: `python -m quart_app.app_server` (hypercorn) as a subprocess on a free port."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from contract_kit import APP_ID, APP_SECRET, APP_VERSION
from local_ports import free_port
from server_process import ServerProcess

REPO = Path(__file__).resolve().parents[2]


def start_live_app(
    storage: Path,
    dsn: str,
    config: dict[str, Any],
    log_path: Path,
    *,
    server_args: Sequence[str] = (),
    timeout_s: float = 120,
    ready: Callable[[str], bool] | None = None,
    program: Sequence[str] = ("-m", "quart_app.app_server"),
    env: Mapping[str, str] | None = None,
) -> tuple[str, ServerProcess]:
    """(base URL, server) once /heartbeat answers (or `ready(base URL)` says so); `config` is written to
    storage/config.yaml, `server_args` go to the server, `program` is what python runs, `env` adds to (or overrides)
    the AppAPI variables. Stop it yourself."""
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    env = {
        **os.environ,
        "APP_ID": APP_ID,
        "APP_SECRET": APP_SECRET,
        "APP_VERSION": APP_VERSION,
        "APP_PERSISTENT_STORAGE": str(storage),
        # upstream's SQLAlchemy-style URL, as AppAPI passes EXTERNAL_DB
        "EXTERNAL_DB": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
        **(env or {}),
    }
    command = [sys.executable, *program, *server_args, "--bind", f"127.0.0.1:{port}"]
    server = ServerProcess(command, log_path, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    check = ready or answers_heartbeat
    server.start(lambda: check(base), timeout_s=timeout_s)
    return base, server


def answers_heartbeat(base: str) -> bool:
    return httpx.get(f"{base}/heartbeat", timeout=2).status_code == 200
