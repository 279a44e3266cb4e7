"""The real server for tests: `python -m quart_app.app_server` with the flags supervisord gives it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import live_app
from contract_kit import APP_ID, APP_SECRET, APP_VERSION, signed_headers
from server_process import ServerProcess

from appliance.config import parse_config
from appliance.launch import app_server_arguments


def small_config(embedder_url: str, **config: Any) -> dict[str, Any]:
    """A small app config (this embedder, extractive LLM, one parser process); `config` replaces its top-level
    sections."""
    raw: dict[str, Any] = {
        "embedding": {"base_url": embedder_url, "workers": 1, "chunk_tokens": 96},
        "embedding_worker": {"idle_poll_s": 0.2},
        "llm": {"extractive": {}},
        "ingest": {"parse_workers": 1},
        # a short wait for a connection, so an outage is answered in seconds
        "vectordb": {"pgvector": {"pool_max": 6, "acquire_timeout_s": 2}},
    }
    raw.update(config)
    return raw


def start_live_app(tmp_path: Path, dsn: str, embedder_url: str, **config: Any) -> tuple[str, ServerProcess]:
    """The app on `dsn` (as EXTERNAL_DB), started as supervisord.conf does and enabled by AppAPI; (base URL, process).

    `config` replaces top-level sections of `small_config`."""
    raw = small_config(embedder_url, **config)
    base, server = live_app.start_live_app(
        tmp_path / "storage",
        dsn,
        raw,
        tmp_path / "server.log",
        server_args=app_server_arguments(parse_config(raw)),
        timeout_s=180,
    )
    enabled = httpx.put(f"{base}/enabled?enabled=1", headers=signed_headers(), timeout=30)
    assert enabled.status_code == 200, enabled.text
    return base, server


@contextmanager
def running_live_app(tmp_path: Path, dsn: str, embedder_url: str, **config: Any) -> Iterator[tuple[str, ServerProcess]]:
    """`start_live_app` for the length of a `with` block: the server is stopped however the block ends."""
    base, server = start_live_app(tmp_path, dsn, embedder_url, **config)
    try:
        yield base, server
    finally:
        server.stop()


def ccb_env(base: str, storage: Path) -> dict[str, str]:
    """The environment an admin's shell gives `ccb` for this app: its address and its secret."""
    address = urlsplit(base)
    return {
        **os.environ,
        "PYTHONPATH": str(live_app.REPO),
        "APP_PERSISTENT_STORAGE": str(storage),
        "APP_HOST": str(address.hostname),
        "APP_PORT": str(address.port),
        "APP_ID": APP_ID,
        "APP_VERSION": APP_VERSION,
        "APP_SECRET": APP_SECRET,
    }
