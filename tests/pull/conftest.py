"""Pull-mode fixtures: the fake Nextcloud, the real embedder program, and the real app pointed at both."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))

from contract_kit import contract_config, make_settings
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import PullApp

from quart_app.app_settings import AppSettings

# short waits so a test sees backoff and polling in milliseconds; the defaults are pinned in test_pull_config.py
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
