"""A kill -9 (or an OOM kill) of the real app server in the middle of a documents batch: the restarted server indexes
that batch at once, not when the PHP app's 24 h lock of its rows ends. Real hypercorn, real database and embedder."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import psycopg
import pytest
from contract_kit import contract_config, signed_headers
from live_app import start_live_app
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import FAST_PULL, LABEL
from waiting import wait_for

pytestmark = pytest.mark.slow


def _enable(base: str) -> None:
    response = httpx.put(f"{base}/enabled", params={"enabled": "1"}, headers=signed_headers(), timeout=60)
    assert response.status_code == 200, response.text


def _sources(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT source_id FROM chunks").fetchall()}


def test_a_batch_in_hand_when_the_app_is_killed_goes_first_after_the_restart(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    fast = [nextcloud.add_file(["alice"], f"files/fast{i}.txt", LABEL + f" Fast {i}.".encode()) for i in range(3)]
    held = nextcloud.add_file(["alice"], "files/held.txt", LABEL + b" Held.")
    released = nextcloud.hold_file(held)  # its download sends its headers, then waits: the batch is in hand
    config = contract_config(embedder_url, pull=FAST_PULL)
    storage = tmp_path / "storage"
    base, server = start_live_app(storage, fresh_dsn, config, tmp_path / "first.log", env=nextcloud.env())
    try:
        _enable(base)
        wait_for(
            lambda: nextcloud.file_fetches[held] == 1 and len(nextcloud.locked_rows()["files"]) == 4,
            timeout=120,
            what="the batch of four claimed and the held file downloading",
        )
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(60)
    finally:
        server.stop()
    # killed mid-batch: nothing acknowledged, every row locked in Nextcloud for 24 h (the fake's clock does not move)
    assert nextcloud.acked_documents()["files"] == [] and len(nextcloud.locked_rows()["files"]) == 4
    released.set()
    base, server = start_live_app(storage, fresh_dsn, config, tmp_path / "second.log", env=nextcloud.env())
    try:
        _enable(base)
        wait_for(
            lambda: len(nextcloud.acked_documents()["files"]) == 4,
            timeout=120,
            what="the killed batch indexed after the restart",
        )
    finally:
        server.stop()
    assert nextcloud.queue_rows()["files"] == []
    assert _sources(fresh_dsn) == {f"files__default: {f}" for f in [*fast, held]}
