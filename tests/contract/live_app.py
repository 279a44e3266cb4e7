"""The real app server for tests: hypercorn serving "quart_app:create_app()" as a subprocess on a free port."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
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
) -> tuple[str, ServerProcess]:
    """(base URL, server) once /heartbeat answers; `config` is written to storage/config.yaml, `server_args` go to
    hypercorn. Stop it yourself."""
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
    }
    # --workers 0: serve in this process (a daemonic hypercorn worker could not start the parser processes)
    command = [sys.executable, "-m", "hypercorn", "--workers", "0", *server_args, "--bind", f"127.0.0.1:{port}"]
    command.append("quart_app:create_app()")
    server = ServerProcess(command, log_path, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    server.start(lambda: httpx.get(f"{base}/heartbeat", timeout=2).status_code == 200, timeout_s=timeout_s)
    return base, server
