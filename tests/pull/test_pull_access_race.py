"""Issue 9 finding 5 in pull mode: an action applied while the documents loop is fetching or ingesting the same file
is not undone by that ingest (the fake Nextcloud holds the download until the test releases it)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from contract_kit import contract_config, make_settings
from nextcloud_pull_fake import LOCK_TIMEOUT_S, FakePullNextcloud
from pull_kit import FAST_PULL, PullApp, acked, until

# (action type, payload, who still reads the file afterwards, whether Nextcloud still has the file)
DENY = {"op": "deny", "userIds": ["bob1"], "sourceId": "files__default: 7001"}
CASES: list[tuple[str, dict[str, Any], set[str], bool]] = [
    ("update_access_source_id", DENY, {"alice1"}, True),
    ("update_access_decl_source_id", {"userIds": ["alice2"], "sourceId": "files__default: 7002"}, {"alice2"}, True),
    ("delete_user_id", {"userId": "bob3"}, {"alice3"}, True),
    ("delete_source_ids", {"sourceIds": ["files__default: 7004"]}, set(), False),
    ("delete_provider_id", {"providerId": "files__default"}, set(), False),
]


def _answered_or_waiting(pull_app: PullApp, action_id: int) -> bool:
    """The action was applied already (the race) or waits for the ingest of its file."""
    return action_id in acked(pull_app.nextcloud, "actions") or pull_app.engine.order.snapshot()["changes_waiting"] == 1


@pytest.mark.parametrize(("action", "payload", "readers", "kept"), CASES, ids=[case[0] for case in CASES])
async def test_an_action_applied_during_the_download_wins_over_the_ingest(
    pull_app: PullApp, nextcloud: FakePullNextcloud, action: str, payload: dict[str, Any], readers: set[str], kept: bool
) -> None:
    n = CASES.index((action, payload, readers, kept)) + 1
    file_id, users, word = 7000 + n, [f"alice{n}", f"bob{n}"], f"platypus{n}x"
    source_id = f"files__default: {file_id}"
    release = nextcloud.hold_file(file_id)
    content = f"The {word} project budget is on track.".encode()
    nextcloud.add_file(users, f"files/notes{n}.txt", content, file_id=file_id)
    row = nextcloud.file_row_id(file_id)
    await until(lambda: nextcloud.file_fetches[file_id] >= 1, what="the download to start")
    # what Nextcloud says now, and the action the PHP app queues for it
    if kept:
        nextcloud.set_file_users(file_id, sorted(readers))
    else:
        nextcloud.remove_file(file_id)
    action_id = nextcloud.add_action(action, payload)
    await until(lambda: _answered_or_waiting(pull_app, action_id), what="the action to be applied or to wait")
    release.set()
    await until(lambda: action_id in acked(nextcloud, "actions") and row in acked(nextcloud, "files"), what="both")
    for user in users:
        found = source_id in await pull_app.search(user, f"{word} project budget")
        assert found == (user in readers), f"{action}: does {user} reach {source_id} after both finished?"


async def test_an_action_still_busy_after_its_retries_stays_queued_with_every_action_after_it(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    ingest = {"parse_workers": 1, "max_part_mb": 2, "max_request_mb": 8, "access_wait_s": 0.05}
    settings = make_settings(
        tmp_path / "storage", fresh_dsn, contract_config(embedder_url, pull=FAST_PULL, ingest=ingest), nextcloud.url
    )
    async with PullApp(settings, nextcloud) as pull_app:
        await pull_app.enable()
        other = nextcloud.add_file(["alice"], "files/other.txt", b"The wallaby91x project budget is on track.")
        await until(lambda: len(acked(nextcloud, "files")) == 1, what="the other file indexed")
        release = nextcloud.hold_file(7091)
        nextcloud.add_file(["alice", "bob"], "files/held.txt", b"The quokka91x project is on track.", file_id=7091)
        await until(lambda: nextcloud.file_fetches[7091] >= 1, what="the download to start")
        nextcloud.set_file_users(7091, ["alice"])
        held_deny = {"op": "deny", "userIds": ["bob"], "sourceId": "files__default: 7091"}
        other_allow = {"op": "allow", "userIds": ["carol"], "sourceId": f"files__default: {other}"}
        deny, share = nextcloud.add_actions(
            [("update_access_source_id", held_deny), ("update_access_source_id", other_allow)]
        )
        counters = await _actions_counters_once_left(pull_app)
        # the allow behind the busy deny was not applied ahead of it: both stay queued, in their order
        assert counters["left_locked"] == 2 and "applied" not in counters, counters
        assert _left_locked(nextcloud) == {deny, share}
        assert f"files__default: {other}" not in await pull_app.search("carol", "wallaby91x project budget")
        release.set()
        await until(lambda: len(acked(nextcloud, "files")) == 2, what="the held file indexed")
        clock = time.time() + LOCK_TIMEOUT_S + 1
        nextcloud.now = lambda: clock  # a day later Nextcloud serves the locked actions again, in their order
        await until(lambda: {deny, share} <= acked(nextcloud, "actions"), what="both actions applied")
        assert "files__default: 7091" not in await pull_app.search("bob", "quokka91x project")
        assert f"files__default: {other}" in await pull_app.search("carol", "wallaby91x project budget")


async def _actions_counters_once_left(pull_app: PullApp) -> dict[str, int]:
    """The actions loop's counters once it has left a batch in the queue."""
    for _ in range(1500):
        counters: dict[str, int] = (await pull_app.status())["loops"]["actions"]["counters"]
        if counters.get("left_locked"):
            return counters
        await asyncio.sleep(0.02)
    raise AssertionError("the actions loop never left an action in the queue")


def _left_locked(nextcloud: FakePullNextcloud) -> set[int]:
    """Action rows claimed and not acknowledged."""
    locked: set[int] = set(nextcloud.locked_rows()["actions"])
    acknowledged: set[int] = acked(nextcloud, "actions")
    return locked - acknowledged
