"""Actions are applied in the order Nextcloud queued them, whatever happens to one of them: one waiting for its source
is not overtaken by those queued after it, one whose acknowledgement was lost is not applied again when Nextcloud
serves it a day later, and one stored before a stop is applied first at the next start.

Before, an action left in Nextcloud's queue came back only after 24 h, after the actions queued behind it: an allow
replayed over a later deny gave a user a document Nextcloud had unshared from her."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import psycopg
from async_wait import until
from contract_kit import contract_config, make_settings
from nextcloud_pull_fake import LOCK_TIMEOUT_S, FakePullNextcloud
from pull_kit import FAST_PULL, PullApp, acked, days_pass

from quart_app.app_settings import AppSettings
from quart_app.store.pull_action_store import APPLIER_LOCK_KEY

# an action waits for a source being indexed only this long before it is tried again
INGEST = {"parse_workers": 1, "max_part_mb": 2, "max_request_mb": 8, "access_wait_s": 0.05}


def _settings(tmp_path: Path, dsn: str, embedder_url: str, nextcloud: FakePullNextcloud) -> AppSettings:
    raw = contract_config(embedder_url, pull=FAST_PULL, ingest=INGEST)
    settings: AppSettings = make_settings(tmp_path / "storage", dsn, raw, nextcloud.url)
    return settings


async def _actions_once(pull_app: PullApp, done: Callable[[dict[str, int]], bool], what: str) -> dict[str, int]:
    """The actions loop's counters once `done` holds for them."""
    for _ in range(1500):
        counters: dict[str, int] = (await pull_app.status())["loops"]["actions"]["counters"]
        if done(counters):
            return counters
        await asyncio.sleep(0.02)
    raise AssertionError(f"the actions loop never got there: {what}")


def _day_later(nextcloud: FakePullNextcloud) -> None:
    """Nextcloud's clock a day on: every row claimed and not acknowledged is served again."""
    clock = time.time() + LOCK_TIMEOUT_S + 1
    nextcloud.now = lambda: clock


def _waiting_rows(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT row_id FROM pull_actions WHERE done_at IS NULL ORDER BY seq")]


async def test_an_action_waiting_for_its_source_is_applied_before_those_queued_after_it(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    async with PullApp(_settings(tmp_path, fresh_dsn, embedder_url, nextcloud), nextcloud) as pull_app:
        await pull_app.enable()
        other = nextcloud.add_file(["alice"], "files/other.txt", b"The wallaby91x project budget is on track.")
        await until(lambda: len(acked(nextcloud, "files")) == 1, what="the other file indexed")
        release = nextcloud.hold_file(7091)
        nextcloud.add_file(["alice", "bob"], "files/held.txt", b"The quokka91x project is on track.", file_id=7091)
        await until(lambda: nextcloud.file_fetches[7091] >= 1, what="the download to start")
        held, shared = "files__default: 7091", f"files__default: {other}"
        nextcloud.set_file_users(7091, ["alice"])
        first = nextcloud.add_actions(
            [
                ("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": held}),
                ("update_access_source_id", {"op": "allow", "userIds": ["carol"], "sourceId": shared}),
            ]
        )
        counters = await _actions_once(pull_app, lambda c: c.get("retries", 0) >= 2, "the deny waits for its source")
        # both are stored and acknowledged; the allow behind the busy deny has not overtaken it
        assert "applied" not in counters and set(first) <= acked(nextcloud, "actions")
        assert _waiting_rows(fresh_dsn) == first
        assert shared not in await pull_app.search("carol", "wallaby91x project budget")
        # queued after them while the deny still waits: the share is taken back
        take_back = {"op": "deny", "userIds": ["carol"], "sourceId": shared}
        later = nextcloud.add_action("update_access_source_id", take_back)
        release.set()
        await _actions_once(pull_app, lambda c: c.get("applied") == 3, "all three applied")
        assert later in acked(nextcloud, "actions") and _waiting_rows(fresh_dsn) == []
        await until(lambda: len(acked(nextcloud, "files")) == 2, what="the held file indexed")
        _day_later(nextcloud)
        await asyncio.sleep(0.5)  # a few polls: nothing is left to serve again
        assert held not in await pull_app.search("bob", "quokka91x project")
        assert held in await pull_app.search("alice", "quokka91x project")
        assert shared not in await pull_app.search("carol", "wallaby91x project budget")
        assert (await pull_app.status())["loops"]["actions"]["counters"]["applied"] == 3


async def test_an_action_nextcloud_serves_again_after_a_lost_acknowledgement_is_not_applied_twice(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    file_id = nextcloud.add_file(["alice"], "files/held.txt", b"The quokka72x project is on track.")
    await until(lambda: len(acked(nextcloud, "files")) == 1, what="the file indexed")
    await pull_app.drain_embeddings()
    source = f"files__default: {file_id}"
    nextcloud.endpoint_faults["ack_actions"] = deque([500] * 1000)  # Nextcloud's DELETE fails for a while
    allow = nextcloud.add_action("update_access_source_id", {"op": "allow", "userIds": ["carol"], "sourceId": source})
    await _actions_once(pull_app, lambda c: c.get("applied") == 1, "the allow applied")
    assert source in await pull_app.search("carol", "quokka72x project")
    deny = nextcloud.add_action("update_access_source_id", {"op": "deny", "userIds": ["carol"], "sourceId": source})
    await _actions_once(pull_app, lambda c: c.get("applied") == 2 and c.get("ack_failures", 0) >= 2, "the deny")
    assert not {allow, deny} & acked(nextcloud, "actions")
    _day_later(nextcloud)  # both rows come back, in their order
    counters = await _actions_once(pull_app, lambda c: c.get("served_again") == 2, "both rows served again")
    nextcloud.endpoint_faults["ack_actions"].clear()
    await until(lambda: {allow, deny} <= acked(nextcloud, "actions"), what="both acknowledged at last")
    assert counters["applied"] == 2  # not applied again: the allow replayed over the deny let carol read it
    assert source not in await pull_app.search("carol", "quokka72x project")


async def test_an_action_stored_before_a_stop_is_applied_first_at_the_next_start(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    settings = _settings(tmp_path, fresh_dsn, embedder_url, nextcloud)
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        kept = nextcloud.add_file(["alice", "bob"], "files/kept.txt", b"The numbat55x plan is approved.")
        await until(lambda: len(acked(nextcloud, "files")) == 1, what="the file indexed")
        release = nextcloud.hold_file(7055)
        nextcloud.add_file(["alice", "bob"], "files/held.txt", b"The bilby55x plan is approved.", file_id=7055)
        await until(lambda: nextcloud.file_fetches[7055] >= 1, what="the download to start")
        stored = nextcloud.add_actions(
            [
                ("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": "files__default: 7055"}),
                ("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": f"files__default: {kept}"}),
            ]
        )
        await _actions_once(pull_app, lambda c: c.get("retries", 0) >= 1, "the first deny waits for its source")
        release.set()  # the app stops now, before it tries the deny again
    # acknowledged to Nextcloud, so it will never serve them again: only the database remembers them
    assert set(stored) <= acked(nextcloud, "actions") and _waiting_rows(fresh_dsn) == stored
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        await _actions_once(pull_app, lambda c: c.get("applied") == 2, "both applied after the restart")
        assert _waiting_rows(fresh_dsn) == []
        await pull_app.drain_embeddings()
        assert f"files__default: {kept}" not in await pull_app.search("bob", "numbat55x plan approved")
        assert f"files__default: {kept}" in await pull_app.search("alice", "numbat55x plan approved")


async def test_stored_actions_are_applied_by_one_replica_at_a_time(
    pull_app: PullApp, nextcloud: FakePullNextcloud, fresh_dsn: str
) -> None:
    file_id = nextcloud.add_file(["alice"], "files/notes.txt", b"The dingo33x notes are ready.")
    await until(lambda: len(acked(nextcloud, "files")) == 1, what="the file indexed")
    await pull_app.drain_embeddings()
    source = f"files__default: {file_id}"
    with psycopg.connect(fresh_dsn, autocommit=True) as other_replica:
        other_replica.execute("SELECT pg_advisory_lock(%s)", (APPLIER_LOCK_KEY,))
        allow = nextcloud.add_action("update_access_source_id", {"op": "allow", "userIds": ["bob"], "sourceId": source})
        await until(lambda: allow in acked(nextcloud, "actions"), what="the allow stored and acknowledged")
        for _ in range(100):
            actions = (await pull_app.status())["loops"]["actions"]
            if actions["detail"] == "another replica applies the stored actions":
                break
            await asyncio.sleep(0.02)
        assert actions["detail"] == "another replica applies the stored actions", actions
        assert "applied" not in actions["counters"] and _waiting_rows(fresh_dsn) == [allow]
        other_replica.execute("SELECT pg_advisory_unlock(%s)", (APPLIER_LOCK_KEY,))
        await pull_app.actions_applied()
    assert source in await pull_app.search("bob", "dingo33x notes ready")


def _action_polls(nextcloud: FakePullNextcloud) -> int:
    return sum(1 for r in nextcloud.requests if r.method == "GET" and r.path.endswith("/queues/actions"))


async def test_an_action_whose_acknowledgement_was_lost_before_a_restart_is_not_applied_again_days_later(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    """The allow's DELETE is lost and the app restarts (what it meant to send again was in memory); a deny after it is
    acknowledged. Nextcloud still held the allow's row, and served it again when the app ran after two days: its record
    (kept two days from its receipt) was gone, and the allow was applied over the deny."""
    settings = _settings(tmp_path, fresh_dsn, embedder_url, nextcloud)
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        file_id = nextcloud.add_file(["alice"], "files/plan.txt", b"The echidna64x plan is approved.")
        await until(lambda: len(acked(nextcloud, "files")) == 1, what="the file indexed")
        await pull_app.drain_embeddings()
        source = f"files__default: {file_id}"
        nextcloud.endpoint_faults["ack_actions"] = deque([500] * 1000)
        share = {"op": "allow", "userIds": ["carol"], "sourceId": source}
        allow = nextcloud.add_action("update_access_source_id", share)
        await _actions_once(pull_app, lambda c: c.get("applied") == 1 and c.get("ack_failures", 0) >= 1, "the allow")
    nextcloud.endpoint_faults["ack_actions"].clear()
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        deny = nextcloud.add_action("update_access_source_id", {**share, "op": "deny"})
        await until(lambda: deny in acked(nextcloud, "actions"), what="the deny acknowledged")
        await pull_app.actions_applied()
        # named again in the next DELETE, the allow's row is not left locked in Nextcloud's queue
        assert allow in acked(nextcloud, "actions")
        assert source not in await pull_app.search("carol", "echidna64x plan approved")
    days_pass(fresh_dsn, nextcloud, 3)
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        polls = _action_polls(nextcloud)
        await until(lambda: _action_polls(nextcloud) >= polls + 2, what="the actions queue polled after the restart")
        await until(lambda: allow not in nextcloud.queue_rows()["actions"], what="the allow's row acknowledged")
        await pull_app.actions_applied()
        assert source not in await pull_app.search("carol", "echidna64x plan approved")
        assert source in await pull_app.search("alice", "echidna64x plan approved")


async def test_an_applied_action_is_remembered_until_nextcloud_confirms_its_acknowledgement(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    """Every DELETE is lost, before the app is down for three days and after: Nextcloud serves both rows again. Kept two
    days from their receipt, their records were forgotten at the start and both actions applied a second time."""
    settings = _settings(tmp_path, fresh_dsn, embedder_url, nextcloud)
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        file_id = nextcloud.add_file(["alice"], "files/plan.txt", b"The potoroo65x plan is approved.")
        await until(lambda: len(acked(nextcloud, "files")) == 1, what="the file indexed")
        source = f"files__default: {file_id}"
        nextcloud.endpoint_faults["ack_actions"] = deque([500] * 1000)
        rows = nextcloud.add_actions(
            [
                ("update_access_source_id", {"op": "allow", "userIds": ["carol"], "sourceId": source}),
                ("update_access_source_id", {"op": "deny", "userIds": ["carol"], "sourceId": source}),
            ]
        )
        await _actions_once(pull_app, lambda c: c.get("applied") == 2 and c.get("ack_failures", 0) >= 1, "both")
    assert not set(rows) & acked(nextcloud, "actions")
    days_pass(fresh_dsn, nextcloud, 3)
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        # their DELETE, sent again with them, was lost too
        counters = await _actions_once(
            pull_app, lambda c: c.get("served_again") == 2 and c.get("ack_failures", 0) >= 1, "both rows served again"
        )
        assert "applied" not in counters and counters["received"] == 0


async def test_an_acknowledgement_lost_before_a_stop_is_sent_at_the_next_start(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    """No action comes after the restart: the row stayed locked in Nextcloud's queue until served again a day later."""
    settings = _settings(tmp_path, fresh_dsn, embedder_url, nextcloud)
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        nextcloud.endpoint_faults["ack_actions"] = deque([500] * 1000)
        gone = nextcloud.add_action("delete_user_id", {"userId": "dave"})
        await _actions_once(pull_app, lambda c: c.get("applied") == 1 and c.get("ack_failures", 0) >= 1, "applied")
    nextcloud.endpoint_faults["ack_actions"].clear()
    assert nextcloud.locked_rows()["actions"] == [gone]
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        await until(lambda: gone in acked(nextcloud, "actions"), what="the lost acknowledgement sent at the start")
        assert nextcloud.queue_rows()["actions"] == []
