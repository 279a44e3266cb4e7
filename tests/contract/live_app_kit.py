"""The real server for tests: hypercorn serving "quart_app:create_app()" with the flags supervisord gives it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from contract_kit import APP_ID, APP_SECRET, APP_VERSION, signed_headers
from local_ports import free_port
from server_process import ServerProcess

from appliance.config import parse_config
from appliance.launch import app_server_arguments

REPO = Path(__file__).resolve().parents[2]


def start_live_app(tmp_path: Path, dsn: str, embedder_url: str, **config: Any) -> tuple[str, ServerProcess]:
    """The app on `dsn` (as EXTERNAL_DB), started as supervisord.conf does and enabled by AppAPI; (base URL, process).

    `config` replaces top-level sections of a small config (our embedder, extractive LLM, one parser process)."""
    storage = tmp_path / "storage"
    storage.mkdir()
    raw: dict[str, Any] = {
        "embedding": {"base_url": embedder_url, "workers": 1, "chunk_tokens": 96},
        "embedding_worker": {"idle_poll_s": 0.2},
        "llm": {"extractive": {}},
        "ingest": {"parse_workers": 1},
        # a short wait for a connection, so an outage is answered in seconds
        "vectordb": {"pgvector": {"pool_max": 6, "acquire_timeout_s": 2}},
    }
    raw.update(config)
    (storage / "config.yaml").write_text(yaml.safe_dump(raw))
    port = free_port()
    env = {
        **os.environ,
        "APP_ID": APP_ID,
        "APP_SECRET": APP_SECRET,
        "APP_VERSION": APP_VERSION,
        "APP_PERSISTENT_STORAGE": str(storage),
        "EXTERNAL_DB": dsn,
    }
    # --workers 0: serve in this process (a daemonic hypercorn worker could not start the parser processes)
    command = [sys.executable, "-m", "hypercorn", "--workers", "0", *app_server_arguments(parse_config(raw))]
    command += ["--bind", f"127.0.0.1:{port}"]
    server = ServerProcess([*command, "quart_app:create_app()"], tmp_path / "server.log", env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    server.start(lambda: httpx.get(f"{base}/heartbeat", timeout=2).status_code == 200, timeout_s=180)
    enabled = httpx.put(f"{base}/enabled?enabled=1", headers=signed_headers(), timeout=30)
    assert enabled.status_code == 200, enabled.text
    return base, server
