"""Files whose download fails all its in-process tries: kept in the database and tried again later by us, while their
queue row stays locked for us (Nextcloud itself serves it again only after 24 h)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from async_wait import until
from contract_kit import contract_config, make_settings
from nextcloud_pull_fake import LOCK_TIMEOUT_S, FakePullNextcloud
from pull_kit import BUDGET, FAST_PULL, PullApp, acked

from quart_app.app_settings import AppSettings

# later tries a fraction of a second apart (the defaults, 10 min, 1 h and 6 h, are pinned in test_pull_config.py)
RETRY_LATER_S = [0.3, 0.3]
# a later try the test itself makes due (UPDATE … next_try_at), so nothing races it
RETRY_AN_HOUR_LATER_S = [3600.0]


def _settings(root: Path, dsn: str, embedder_url: str, nextcloud: FakePullNextcloud, later: list[float]) -> AppSettings:
    raw = contract_config(embedder_url, pull={**FAST_PULL, "retry_later_s": later})
    settings: AppSettings = make_settings(root / "storage", dsn, raw, nextcloud_url=nextcloud.url)
    return settings


@pytest.fixture
async def retry_app(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> AsyncIterator[PullApp]:
    async with PullApp(_settings(tmp_path, fresh_dsn, embedder_url, nextcloud, RETRY_LATER_S), nextcloud) as running:
        await running.enable()
        yield running


@pytest.fixture
def hourly_settings(tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud) -> AppSettings:
    return _settings(tmp_path, fresh_dsn, embedder_url, nextcloud, RETRY_AN_HOUR_LATER_S)


@pytest.fixture
async def hourly_app(hourly_settings: AppSettings, nextcloud: FakePullNextcloud) -> AsyncIterator[PullApp]:
    async with PullApp(hourly_settings, nextcloud) as running:
        await running.enable()
        yield running


async def _sql(app: PullApp, statement: str) -> None:
    async with app.engine.db.connection() as conn:
        await conn.execute(statement)


async def test_a_file_whose_storage_fails_for_a_while_is_tried_again_later_and_indexed(
    retry_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    budget = nextcloud.add_file(["alice"], "files/budget.txt", BUDGET)
    row = nextcloud.file_row_id(budget)
    # the storage answers 500 for every in-process try (pull.fetch_attempts = 5) and the first of the later ones
    nextcloud.file_faults[budget] = deque([500] * 6)
    await until(lambda: row in acked(nextcloud, "files"), what="the file indexed on a later try")
    # before: left locked after the fifth 500, and served again by Nextcloud only a day later
    assert nextcloud.file_fetches[budget] == 7
    counters = (await retry_app.status())["loops"]["documents"]["counters"]
    assert counters["indexed"] == 1 and counters["retry_later"] == 1 and counters["failed"] == 0
    await retry_app.drain_embeddings()
    assert (await retry_app.search("alice", "travel budget Berlin office"))[0] == f"files__default: {budget}"
    # the kept record goes just after the acknowledgement, not with it
    await _until_waiting(retry_app, 0)
    assert (await retry_app.status())["pull"]["files_to_retry"] == {"files": 0, "next_try_at": None}


async def test_a_file_to_retry_survives_a_restart_and_shows_in_status(
    hourly_settings: AppSettings, nextcloud: FakePullNextcloud
) -> None:
    budget = nextcloud.add_file(["alice"], "files/budget.txt", BUDGET)
    row = nextcloud.file_row_id(budget)
    nextcloud.file_faults[budget] = deque([503] * 5)
    async with PullApp(hourly_settings, nextcloud) as first:
        await first.enable()
        await _until_waiting(first, 1)
        # the later try is an hour ahead: the app stops before it
        report = (await first.status())["pull"]["files_to_retry"]
        assert report["files"] == 1 and report["next_try_at"] is not None
    assert row not in acked(nextcloud, "files") and row in nextcloud.locked_rows()["files"]
    async with PullApp(hourly_settings, nextcloud) as restarted:
        await _sql(restarted, "UPDATE pull_file_retries SET next_try_at = now()")
        await restarted.enable()
        # the row is still locked in Nextcloud: only our own record brings the file back
        await until(lambda: row in acked(nextcloud, "files"), what="the file indexed after the restart")
        assert nextcloud.file_fetches[budget] == 6


async def test_a_file_failing_until_its_lock_is_about_to_end_is_acknowledged_as_failed(
    retry_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    broken = nextcloud.add_file(["alice"], "files/broken.txt", BUDGET)
    row = nextcloud.file_row_id(broken)
    nextcloud.file_faults[broken] = deque([500] * 1000)
    # two later tries a fraction of a second apart, then the last one waits for the end of the row's lock
    await _until_kept(retry_app, "tries = 2 AND next_try_at > now() + interval '23 hours'")
    assert nextcloud.file_fetches[broken] == 15
    assert row not in acked(nextcloud, "files")
    # 23 h 40 min after the claim: the last try before Nextcloud's lock ends fails as well
    await _sql(
        retry_app,
        "UPDATE pull_file_retries SET claimed_at = now() - interval '23 hours 40 minutes', next_try_at = now()",
    )
    await until(lambda: row in acked(nextcloud, "files"), what="the row acknowledged as failed")
    assert nextcloud.file_fetches[broken] == 20
    counters = (await retry_app.status())["loops"]["documents"]["counters"]
    assert counters["failed"] == 1 and counters["indexed"] == 0
    await _until_waiting(retry_app, 0)


async def test_a_later_try_whose_lock_has_ended_leaves_the_file_to_the_new_claim_and_its_readers(
    hourly_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    budget = nextcloud.add_file(["alice"], "files/budget.txt", BUDGET)
    row = nextcloud.file_row_id(budget)
    nextcloud.file_faults[budget] = deque([500] * 5)
    await _until_waiting(hourly_app, 1)
    # a day passes (the app was stopped, say): alice lost the file, Nextcloud serves its row again listing bob
    nextcloud.set_file_users(budget, ["bob"])
    await _sql(hourly_app, "UPDATE pull_file_retries SET claimed_at = now() - interval '25 hours', next_try_at = now()")
    clock = nextcloud.now
    nextcloud.now = lambda: clock() + LOCK_TIMEOUT_S + 60
    await until(lambda: row in acked(nextcloud, "files"), what="the row served again and indexed")
    await _until_waiting(hourly_app, 0)
    assert acked(nextcloud, "files") == {row} and nextcloud.file_fetches[budget] == 6
    await hourly_app.drain_embeddings()
    # an old try would have stored alice's reader list: she would find bob's file
    assert f"files__default: {budget}" not in await hourly_app.search("alice", "travel budget Berlin office")
    assert (await hourly_app.search("bob", "travel budget Berlin office"))[0] == f"files__default: {budget}"


async def test_a_later_try_is_made_with_the_readers_an_access_change_left(
    hourly_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    budget = nextcloud.add_file(["alice", "bob"], "files/budget.txt", BUDGET)
    source = f"files__default: {budget}"
    row = nextcloud.file_row_id(budget)
    nextcloud.file_faults[budget] = deque([500] * 5)
    await _until_waiting(hourly_app, 1)
    # bob's share is taken back while the file waits: the stored reader list is outdated
    nextcloud.set_file_users(budget, ["alice"])
    action = nextcloud.add_action("update_access_decl_source_id", {"userIds": ["alice"], "sourceId": source})
    await until(lambda: action in acked(nextcloud, "actions"), what="the access change received")
    await hourly_app.actions_applied()
    await _sql(hourly_app, "UPDATE pull_file_retries SET next_try_at = now()")
    # tried with the readers of after the change, not left locked until Nextcloud serves the row again a day later
    await until(lambda: row in acked(nextcloud, "files"), what="the file indexed at its later try")
    assert nextcloud.file_fetches[budget] == 6
    await hourly_app.drain_embeddings()
    assert source in await hourly_app.search("alice", "travel budget Berlin office")
    assert source not in await hourly_app.search("bob", "travel budget Berlin office")


async def _until_kept(app: PullApp, condition: str) -> None:
    """Until the one kept file matches an SQL condition."""
    deadline = time.monotonic() + 30
    while True:
        async with app.engine.db.connection() as conn:
            cur = await conn.execute(f"SELECT count(*) FROM pull_file_retries WHERE {condition}")
            row = await cur.fetchone()
        if row is not None and row[0] == 1:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for a kept file with {condition}")
        await asyncio.sleep(0.05)


async def _until_waiting(app: PullApp, files: int) -> None:
    async def waiting() -> int:
        report = (await app.status())["pull"]["files_to_retry"]
        count: int = report["files"]
        return count

    deadline = time.monotonic() + 30
    while (found := await waiting()) != files:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {files} file(s) to retry; {found} wait")
        await asyncio.sleep(0.05)


async def test_the_batch_in_hand_is_not_shown_as_files_to_retry(
    retry_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    # the batch being indexed is written down as it is claimed (a kill -9 during it must not lose it for 24 h); the
    # admin's `ccb status` counts only the files waiting for a later try
    held = nextcloud.add_file(["alice"], "files/held.txt", BUDGET)
    released = nextcloud.hold_file(held)
    await until(lambda: nextcloud.file_fetches[held] == 1, what="the held file downloading")
    waiting = (await retry_app.status())["pull"]["files_to_retry"]
    released.set()
    assert waiting == {"files": 0, "next_try_at": None}
    await until(lambda: len(acked(nextcloud, "files")) == 1, what="the held file indexed")
