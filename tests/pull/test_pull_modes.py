"""Both directions at once with nothing to configure: a PHP app <= 5.3 keeps pushing; 5.4+ is pulled.

Also several replicas on one Nextcloud, and a restart in the middle of a batch: nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import psycopg
import pytest
from async_wait import until, wait_until
from contract_kit import SourcePart, contract_config, make_settings, put_sources
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import BUDGET, FAST_PULL, LABEL, PullApp, acked

from quart_app.app_settings import AppSettings
from quart_app.pull import file_retries

DOCUMENTS_PATH = "/ocs/v2.php/apps/context_chat/queues/documents"
PUSH_MODE_DETAIL = (
    "push mode: the context_chat PHP app has no queues (<= 5.3 pushes files to us, or it is disabled in Nextcloud)"
)


async def test_a_php_app_without_queues_is_probed_quietly_and_push_keeps_working(
    pull_settings: AppSettings, nextcloud: FakePullNextcloud, caplog: pytest.LogCaptureFixture
) -> None:
    nextcloud.pull_supported = False
    caplog.set_level(logging.INFO, logger="quart_app.pull")
    async with PullApp(pull_settings, nextcloud) as running:
        await running.enable()
        response = await put_sources(running.client, [SourcePart("files__default: 1", LABEL, user_ids=["alice"])])
        assert response.status_code == 200
        assert (await response.get_json())["loaded_sources"] == ["files__default: 1"]
        await running.drain_embeddings()
        assert await running.search("alice", "green label") == ["files__default: 1"]
        # recheck_unavailable_s is 0.3 s here: wait for a few re-checks
        await until(lambda: nextcloud.paths("GET").count("/ocs/v2.php/apps/context_chat/queues/actions") >= 3)
        status = await running.status()
    # probes only, no claims; and the search's one WebDAV SEARCH: is alice's file still hers (push mode asks)
    assert set(nextcloud.paths()) == {"/ocs/v2.php/apps/context_chat/queues/actions", "/remote.php/dav/"}
    assert all(r.query.get("n") == "0" for r in nextcloud.requests if r.method != "SEARCH")
    assert nextcloud.dav.searches == [("alice", [1])]
    assert nextcloud.providers == {}  # the PHP app <= 5.3 declares the task types itself
    assert status["pull"]["php_app_queues"] is False
    assert {status["loops"][name]["state"] for name in ("documents", "actions", "tasks")} == {"idle"}
    # what an admin reads in `ccb status`: push mode and why, not the OCS router's 404 text
    assert status["pull"]["detail"] == PUSH_MODE_DETAIL
    assert {status["loops"][name]["detail"] for name in ("documents", "actions", "tasks")} == {PUSH_MODE_DETAIL}
    lines = [r.getMessage() for r in caplog.records if "has no queues" in r.getMessage()]
    assert len(lines) == 1, lines


async def test_the_php_app_upgraded_to_5_4_is_picked_up_without_a_restart(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    nextcloud.pull_supported = False
    await pull_app.enable(False)
    await pull_app.enable(True)
    await until(lambda: (pull_app.engine.pull is not None) and pull_app.engine.pull.gate.available is False)
    nextcloud.pull_supported = True
    row = nextcloud.file_row_id(nextcloud.add_file(["alice"], "files/label.txt", LABEL))
    await until(lambda: acked(nextcloud, "files") == {row}, what="indexed after upgrade")
    await until(lambda: len(nextcloud.providers) == 2)


async def test_an_upgrade_to_5_4_is_noticed_when_the_admin_next_looks_at_the_statistics(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    # the next regular look is an hour away: only the PHP app's statistics call can make the appliance look again
    raw = contract_config(embedder_url, pull={**FAST_PULL, "recheck_unavailable_s": 3600})
    settings = make_settings(tmp_path / "storage", fresh_dsn, raw, nextcloud_url=nextcloud.url)
    nextcloud.pull_supported = False
    async with PullApp(settings, nextcloud) as running:
        await running.enable()
        await until(lambda: running.engine.pull is not None and running.engine.pull.gate.available is False)
        # the admin swaps in PHP app 5.4 and runs `occ context_chat:stats` (or opens the admin page)
        nextcloud.pull_supported = True
        row = nextcloud.file_row_id(nextcloud.add_file(["alice"], "files/label.txt", LABEL))
        assert (await running.post("/countIndexedDocuments", {}))[0] == 200
        await until(lambda: len(nextcloud.providers) == 2, what="the providers registered after the upgrade")
        await until(lambda: acked(nextcloud, "files") == {row}, what="the new file pulled")
        status = await running.status()
    assert status["pull"]["php_app_queues"] is True


def _chunk_rows(dsn: str) -> list[tuple[str, int]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT source_id, count(*) FROM chunks GROUP BY source_id ORDER BY 1").fetchall()


async def test_two_replicas_on_one_nextcloud_index_every_file_once(
    pull_settings: AppSettings, nextcloud: FakePullNextcloud
) -> None:
    files = [nextcloud.add_file(["alice"], f"files/doc{i}.txt", LABEL + f" Document {i}.".encode()) for i in range(40)]
    async with PullApp(pull_settings, nextcloud) as first, PullApp(pull_settings, nextcloud) as second:
        await asyncio.gather(first.enable(), second.enable())
        await until(lambda: len(acked(nextcloud, "files")) == 40, what="40 files acknowledged")
    assert len(files) == 40
    assert set(nextcloud.file_fetches.values()) == {1}  # each file downloaded once, by one replica
    assert len(acked(nextcloud, "files")) == len(nextcloud.acked_documents()["files"])  # acknowledged once
    rows = _chunk_rows(pull_settings.db_url)
    assert len(rows) == 40 and {count for _, count in rows} == {1}


async def test_a_batch_longer_than_its_lease_is_not_taken_by_the_other_replica(
    pull_settings: AppSettings, nextcloud: FakePullNextcloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the batch in hand is leased (a replica killed during it leaves it to the others when the lease ends): a batch
    # that lasts longer must keep its lease, or the other replica takes it, finds its sources busy, and does nothing
    # else while it tries again and again
    monkeypatch.setattr(file_retries, "LEASE_S", 0.5)
    held = nextcloud.add_file(["alice"], "files/held.txt", LABEL)
    held_row = nextcloud.file_row_id(held)
    released = nextcloud.hold_file(held)
    async with PullApp(pull_settings, nextcloud) as first, PullApp(pull_settings, nextcloud) as second:
        await asyncio.gather(first.enable(), second.enable())
        await until(lambda: nextcloud.file_fetches[held] == 1, what="the held file downloading")
        # the other replica polls every 0.2 s at most while it is free: 15 polls outlast the 0.5 s lease
        polls = nextcloud.paths("GET").count(DOCUMENTS_PATH)
        await until(lambda: nextcloud.paths("GET").count(DOCUMENTS_PATH) >= polls + 15, what="the other replica free")
        later = nextcloud.file_row_id(nextcloud.add_file(["alice"], "files/later.txt", BUDGET))
        await until(lambda: acked(nextcloud, "files") == {later}, what="a later file indexed by the other replica")
        released.set()
        await until(lambda: acked(nextcloud, "files") == {later, held_row}, what="the held file indexed")
    assert nextcloud.file_fetches[held] == 1


async def _stopped_while_a_batch_downloads(
    pull_settings: AppSettings, nextcloud: FakePullNextcloud, clock: list[float]
) -> tuple[list[int], int]:
    """Three small files and a slow one claimed in one batch, the app stopped while it downloads the slow one; on
    Nextcloud's `clock`. Returns (the small files, the slow one)."""
    nextcloud.now = lambda: clock[0]
    fast = [nextcloud.add_file(["alice"], f"files/fast{i}.txt", LABEL + f" Fast {i}.".encode()) for i in range(3)]
    slow = nextcloud.add_file(["alice"], "files/slow.txt", LABEL * 400)
    nextcloud.chunk_size = 256
    nextcloud.slow_files[slow] = 0.05  # ~6 s to stream: the app stops while it downloads
    async with PullApp(pull_settings, nextcloud) as running:
        await running.enable()
        await until(lambda: nextcloud.file_fetches[slow] == 1 and len(nextcloud.locked_rows()["files"]) == 4)
    return fast, slow


async def test_a_restart_in_the_middle_of_a_batch_loses_nothing_and_duplicates_nothing(
    pull_settings: AppSettings, nextcloud: FakePullNextcloud
) -> None:
    clock = [1_000_000.0]
    fast, slow = await _stopped_while_a_batch_downloads(pull_settings, nextcloud, clock)
    # stopped mid-batch: nothing of that batch was acknowledged, every row is still locked in Nextcloud
    assert acked(nextcloud, "files") == set() and len(nextcloud.locked_rows()["files"]) == 4
    spool = pull_settings.storage.spool_dir
    assert not spool.exists() or list(spool.iterdir()) == []
    nextcloud.slow_files.clear()
    clock[0] += 24 * 3600 + 1  # the PHP app's 24 h lock expires
    async with PullApp(pull_settings, nextcloud) as restarted:
        await restarted.enable()
        await until(lambda: len(acked(nextcloud, "files")) == 4, what="the batch indexed after the restart")
    rows = dict(_chunk_rows(pull_settings.db_url))
    assert set(rows) == {f"files__default: {f}" for f in [*fast, slow]}
    with psycopg.connect(pull_settings.db_url) as conn:
        versions = conn.execute("SELECT count(*), max(version) FROM documents").fetchone()
    assert versions is not None and versions[0] == 4


async def test_a_batch_cut_short_by_a_stop_goes_first_after_the_restart_not_after_its_lock(
    pull_settings: AppSettings, nextcloud: FakePullNextcloud
) -> None:
    # seen on a real Nextcloud 34: a file claimed as the appliance stopped stayed locked in the PHP app's queue, and
    # the log's "it is indexed after the restart" came true only when the 24 h lock ended
    clock = [1_000_000.0]
    fast, slow = await _stopped_while_a_batch_downloads(pull_settings, nextcloud, clock)
    assert acked(nextcloud, "files") == set() and len(nextcloud.locked_rows()["files"]) == 4
    nextcloud.slow_files.clear()
    clock[0] += 60  # a restart a minute later: every row is still locked for us
    async with PullApp(pull_settings, nextcloud) as restarted:
        await restarted.enable()
        await until(lambda: len(acked(nextcloud, "files")) == 4, timeout_s=120, what="the batch after the restart")

        async def nothing_kept() -> bool:
            return bool((await restarted.status())["pull"]["files_to_retry"]["files"] == 0)

        # the kept files are forgotten once the acknowledgement's answer is back, a moment after the fake saw it
        await wait_until(nothing_kept, "no file kept for a later try")
    assert nextcloud.queue_rows()["files"] == []
    assert set(dict(_chunk_rows(pull_settings.db_url))) == {f"files__default: {f}" for f in [*fast, slow]}
