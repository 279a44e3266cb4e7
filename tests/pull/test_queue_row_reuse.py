"""Queue row ids Nextcloud reuses: after a restore of its database from a backup, or its queue table emptied with its
ids restarted, a new row may carry the id of one we recorded. Such a row is applied or indexed like any other: not
skipped as a replay of the recorded one, and not deleted unprocessed by a DELETE meant for the recorded one."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import psycopg
from async_wait import until
from contract_kit import contract_config, make_settings
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import FAST_PULL, PullApp, acked

from quart_app.app_settings import AppSettings
from quart_app.store.claim_store import KIND_NUMBERS, LOCK_CLASS_BASE


def _hours_pass(dsn: str, hours: int) -> None:
    """Our records of the actions received grow `hours` older (Nextcloud holds no lock on them: all acknowledged)."""
    with psycopg.connect(dsn) as conn:
        shift = f"{hours} hours"
        conn.execute(
            "UPDATE pull_actions SET received_at = received_at - %s::interval, done_at = done_at - %s::interval,"
            " acked_at = acked_at - %s::interval",
            (shift, shift, shift),
        )


async def _apply(pull_app: PullApp, nextcloud: FakePullNextcloud, kind: str, payload: dict[str, Any]) -> int:
    row = nextcloud.add_action(kind, payload)
    acks = nextcloud.acked_documents()["actions"].count(row)
    await until(lambda: nextcloud.acked_documents()["actions"].count(row) > acks, what=f"action row {row} acknowledged")
    await pull_app.actions_applied()
    return row


async def test_an_action_under_a_reused_row_id_is_applied_though_an_earlier_row_said_the_same(
    pull_app: PullApp, nextcloud: FakePullNextcloud, fresh_dsn: str
) -> None:
    """The share, unshare and share again of a file: the second share comes under the first one's row id after the
    queue restarted its ids. Taken for Nextcloud serving the first share again, it was not applied: carol never got it
    back."""
    file_id = nextcloud.add_file(["alice"], "files/plan.txt", b"The wombat81x plan is approved.")
    await until(lambda: len(acked(nextcloud, "files")) == 1, what="the file indexed")
    await pull_app.drain_embeddings()
    source = f"files__default: {file_id}"
    share = {"op": "allow", "userIds": ["carol"], "sourceId": source}
    first = await _apply(pull_app, nextcloud, "update_access_source_id", share)
    await _apply(pull_app, nextcloud, "update_access_source_id", {**share, "op": "deny"})
    assert source not in await pull_app.search("carol", "wombat81x plan approved")
    _hours_pass(fresh_dsn, 2)  # Nextcloud confirmed deleting both rows two hours ago: it cannot serve them again
    nextcloud.restart_row_ids("actions")
    assert await _apply(pull_app, nextcloud, "update_access_source_id", share) == first
    assert source in await pull_app.search("carol", "wombat81x plan approved")


def _settings(tmp_path: Path, dsn: str, embedder_url: str, nextcloud: FakePullNextcloud) -> AppSettings:
    # one row per claim: a reused id the app recorded is then still unclaimed in Nextcloud when a DELETE goes out
    raw = contract_config(embedder_url, pull=FAST_PULL, actions_batch_size=1, doc_indexing_batch_size=1)
    settings: AppSettings = make_settings(tmp_path / "storage", dsn, raw, nextcloud.url)
    return settings


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_lost_acknowledgement_sent_again_never_deletes_a_new_action_under_its_id(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    """Two actions are applied while Nextcloud's DELETEs fail; its database is then restored from a backup taken before
    them, and the next two actions get their ids. The DELETE sent again for the old rows, at the start and with the
    first new row, deleted the unshare queued under the second id before it was claimed: carol kept the file."""
    settings = _settings(tmp_path, fresh_dsn, embedder_url, nextcloud)
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        file_id = nextcloud.add_file(["alice", "carol"], "files/plan.txt", b"The quoll27x plan is approved.")
        await until(lambda: len(acked(nextcloud, "files")) == 1, what="the file indexed")
        await pull_app.drain_embeddings()
        nextcloud.endpoint_faults["ack_actions"] = deque([500] * 1000)
        nextcloud.add_actions([("delete_user_id", {"userId": "dave"}), ("delete_user_id", {"userId": "erin"})])
        unconfirmed = "SELECT count(*) FROM pull_actions WHERE done_at IS NOT NULL AND acked_at IS NULL"
        await until(lambda: _count(fresh_dsn, unconfirmed) == 2, what="both applied, their DELETEs lost")
    nextcloud.endpoint_faults["ack_actions"].clear()
    nextcloud.restart_row_ids("actions")
    source = f"files__default: {file_id}"
    rows = nextcloud.add_actions(
        [
            ("delete_user_id", {"userId": "frank"}),
            ("update_access_source_id", {"op": "deny", "userIds": ["carol"], "sourceId": source}),
        ]
    )
    assert rows == [1, 2]
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        await until(lambda: nextcloud.queue_rows()["actions"] == [], what="the new rows claimed and acknowledged")
        await pull_app.actions_applied()
        assert _count(fresh_dsn, "SELECT count(*) FROM pull_actions WHERE payload->>'op' = 'deny'") == 1
        assert source not in await pull_app.search("carol", "quoll27x plan approved")
        assert source in await pull_app.search("alice", "quoll27x plan approved")


async def test_a_lost_acknowledgement_sent_again_never_deletes_a_new_provider_item_under_its_id(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    """Two mails are indexed while Nextcloud's DELETEs fail; the content queue then restarts its ids and two new mails
    get them. The DELETE sent again for the old rows deleted the second new mail's row before it was claimed: it was
    never indexed."""
    settings = _settings(tmp_path, fresh_dsn, embedder_url, nextcloud)
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        nextcloud.endpoint_faults["ack_documents"] = deque([500] * 1000)
        nextcloud.add_content_item(["alice"], item_id="1", content="The first mail is about the cheese order.")
        nextcloud.add_content_item(["alice"], item_id="2", content="The second mail is about the wine order.")
        noted = "SELECT count(*) FROM pull_unconfirmed_provider_rows"
        await until(lambda: _count(fresh_dsn, noted) == 2, what="both indexed, their DELETEs lost")
    nextcloud.endpoint_faults["ack_documents"].clear()
    nextcloud.restart_row_ids("content_providers")
    first = nextcloud.add_content_item(["alice"], item_id="3", content="The third mail is about the bread order.")
    second = nextcloud.add_content_item(["alice"], item_id="4", content="The platypus19x mail is about the tea order.")
    assert [first, second] == [1, 2]
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        await until(lambda: nextcloud.queue_rows()["content_providers"] == [], what="the new rows acknowledged")
        await pull_app.drain_embeddings()
        assert "mail__mail: 4" in await pull_app.search("alice", "platypus19x tea order")


async def test_a_file_indexed_on_a_later_try_never_deletes_a_new_file_under_its_row_id(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    """A file kept for a later try (its storage failing) is indexed after the files queue restarted its ids. Its DELETE,
    sent with no claim to show who holds that id now, deleted the new file queued under it before it was claimed."""
    raw = contract_config(embedder_url, pull={**FAST_PULL, "retry_later_s": [3600.0]}, doc_indexing_batch_size=1)
    async with PullApp(make_settings(tmp_path / "storage", fresh_dsn, raw, nextcloud.url), nextcloud) as pull_app:
        await pull_app.enable()
        nextcloud.add_file(["alice"], "files/first.txt", b"The first file.")
        await until(lambda: acked(nextcloud, "files") == {1}, what="the first file indexed")
        failing = nextcloud.add_file(["alice"], "files/kept.txt", b"The kept file.")
        nextcloud.file_faults[failing] = deque([500] * 5)  # every in-process try
        kept = "SELECT count(*) FROM pull_file_retries WHERE in_batch_of IS NULL"
        await until(lambda: _count(fresh_dsn, kept) == 1, what="the file kept for a later try")
        nextcloud.restart_row_ids("files")
        release = nextcloud.hold_file(7001)
        nextcloud.add_file(["alice"], "files/held.txt", b"The held file.", file_id=7001)
        await until(lambda: nextcloud.file_fetches[7001] >= 1, what="the held file's batch in hand")
        new = nextcloud.add_file(["alice"], "files/new.txt", b"The kiwi48x file is new.")
        assert nextcloud.file_row_id(new) == 2
        with psycopg.connect(fresh_dsn) as conn:
            # its later try is due after this batch
            conn.execute("UPDATE pull_file_retries SET next_try_at = now() WHERE in_batch_of IS NULL")
        release.set()
        await until(lambda: _count(fresh_dsn, "SELECT count(*) FROM pull_file_retries") == 0, what="the later try")
        await until(lambda: nextcloud.queue_rows()["files"] == [], what="every row acknowledged")
        await pull_app.drain_embeddings()
        assert f"files__default: {new}" in await pull_app.search("alice", "kiwi48x file new")


async def test_a_lost_acknowledgement_never_deletes_a_new_provider_item_left_locked_under_its_id(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    """A mail is indexed while Nextcloud's DELETEs fail; the content queue then restarts its ids and a new mail gets the
    old row's id, is claimed and left locked (another replica indexes its source). The DELETE sent again for the old
    row, right after that claim (its id no higher than the claim's) or the empty answer after it, deleted the new row:
    Nextcloud never served it again, and the mail was never indexed."""
    settings = _settings(tmp_path, fresh_dsn, embedder_url, nextcloud)
    noted = "SELECT count(*) FROM pull_unconfirmed_provider_rows"
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        nextcloud.endpoint_faults["ack_documents"] = deque([500] * 1000)
        nextcloud.add_content_item(["alice"], item_id="1", content="The first mail is about the cheese order.")
        await until(lambda: _count(fresh_dsn, noted) == 1, what="indexed, its DELETE lost")
    nextcloud.endpoint_faults["ack_documents"].clear()
    nextcloud.restart_row_ids("content_providers")
    with psycopg.connect(fresh_dsn, autocommit=True) as other_replica:
        # another replica indexes the new mail's source: its claim holds the source's lock
        other_replica.execute(
            "SELECT pg_advisory_lock(%s + %s, hashtext(%s))", (LOCK_CLASS_BASE, KIND_NUMBERS["source"], "mail__mail: 2")
        )
        row = nextcloud.add_content_item(["alice"], item_id="2", content="The wallaby64x mail is about the tea order.")
        assert row == 1
        async with PullApp(settings, nextcloud) as pull_app:
            await pull_app.enable()
            await until(lambda: "left_locked" in _documents_counters(pull_app), what="the new mail left locked")
            polls = _documents_polls(nextcloud)
            # the batch's DELETE, and the empty answer's after it
            await until(lambda: _documents_polls(nextcloud) >= polls + 2, what="two more polls")
            assert nextcloud.queue_rows()["content_providers"] == [row]


def _documents_counters(pull_app: PullApp) -> dict[str, int]:
    counters: dict[str, int] = pull_app.app.extensions["ccb_lifecycle"].loops.snapshot()["documents"]["counters"]
    return counters


def _documents_polls(nextcloud: FakePullNextcloud) -> int:
    return sum(1 for r in nextcloud.requests if r.method == "GET" and r.path.endswith("/queues/documents"))
