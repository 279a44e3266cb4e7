"""Pull-mode fixtures: the fake Nextcloud, the real embedder program, and the real app pointed at both."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))

from contract_kit import contract_config, make_settings
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import FAST_PULL, PullApp

from quart_app.app_settings import AppSettings


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
