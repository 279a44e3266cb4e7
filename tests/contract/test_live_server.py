"""The whole contract against the real server: `python -m quart_app.app_server` (hypercorn) as a subprocess, with
the real database and the real embedder, driven over HTTP exactly as AppAPI and the PHP app do."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from contract_kit import APP_ID, APP_SECRET, APP_VERSION, ServerProcess, free_port
from live_app import start_live_app
from php_app_flow import run_php_app_flow

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_server(tmp_path: Path, fresh_dsn: str, embedder_url: str) -> Iterator[tuple[str, ServerProcess]]:
    config = {
        "embedding": {"base_url": embedder_url, "workers": 1, "chunk_tokens": 96},
        "embedding_worker": {"idle_poll_s": 0.2},
        "llm": {"extractive": {}},
        "ingest": {"parse_workers": 1},
        # DEBUG: the secret check below then covers every line the app can write
        "log_level": "DEBUG",
    }
    base, server = start_live_app(tmp_path / "storage", fresh_dsn, config, tmp_path / "server.log")
    yield base, server
    server.stop()


def test_the_php_apps_flow_against_the_running_server(live_server: tuple[str, ServerProcess]) -> None:
    base, server = live_server
    run_php_app_flow(base)
    # a newline in the path (%0A, decoded by the server) must not start a log line of its own
    forged = "2099-01-01 00:00:00,000 ERROR quart_app.auth: forged line"
    assert httpx.get(f"{base}/x%0A{forged.replace(' ', '%20')}").status_code == 401
    server.stop()
    log = server.log_text()
    assert "refused POST /query" in log and "refused GET /" in log
    assert APP_SECRET not in log and "nope-123" not in log
    assert f"refused GET /x\\n{forged}" in log
    assert not [line for line in log.splitlines() if line.startswith("2099-")]


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[tuple[str, str, Path, ServerProcess | None]]:
    """The whole appliance as `make run` starts it (entrypoint.sh -> supervisord -> postgres, embedder, app) with the
    shipped CPU config, or an already running one named by CCB_CONTRACT_URL / CCB_CONTRACT_SECRET /
    CCB_CONTRACT_LOG_DIR (a fresh storage dir)."""
    if os.environ.get("CCB_CONTRACT_URL"):
        secret = os.environ.get("CCB_CONTRACT_SECRET", APP_SECRET)
        yield os.environ["CCB_CONTRACT_URL"], secret, Path(os.environ.get("CCB_CONTRACT_LOG_DIR", tmp_path)), None
        return
    storage = tmp_path / "storage"
    storage.mkdir()
    embedder_port = free_port()
    config = (REPO / "configs" / "config.cpu.yaml").read_text()
    config = config.replace("http://127.0.0.1:5000/v1", f"http://127.0.0.1:{embedder_port}/v1")
    (storage / "config.yaml").write_text(config.replace("  port: 5000\n", f"  port: {embedder_port}\n"))
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("NEXTCLOUD_", "EXTERNAL_DB"))}
    env.update(APP_ID=APP_ID, APP_SECRET=APP_SECRET, APP_VERSION=APP_VERSION, APP_PORT=str(port))
    env["APP_PERSISTENT_STORAGE"] = str(storage)
    server = ServerProcess([str(REPO / "entrypoint.sh")], tmp_path / "entrypoint.log", env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    server.start(lambda: httpx.get(f"{base}/heartbeat", timeout=2).status_code == 200, timeout_s=180)
    yield base, APP_SECRET, storage / "logs", server
    server.stop(timeout_s=60)


def test_the_php_apps_flow_against_the_whole_appliance(
    appliance: tuple[str, str, Path, ServerProcess | None],
) -> None:
    """The shipped config's first LLM is nc_texttotext; with no Nextcloud here answers are quoted passages."""
    base, secret, log_dir, server = appliance
    run_php_app_flow(base, secret)
    if server is not None:
        server.stop(timeout_s=60)
        assert server.process is not None and server.process.returncode == 0, server.log_text()[-3000:]
        assert "stopped: postgres (exit status 0)" in server.log_text()
    logs = [path for path in log_dir.rglob("*.log") if path.is_file()]
    assert server is None or {path.name for path in logs} >= {"app.log", "postgres.log", "embedder.log"}
    for path in logs:
        assert secret not in path.read_text(errors="replace"), path
