"""Issue 9 finding 5 in pull mode: an action applied while the documents loop is fetching or ingesting the same file
is not undone by that ingest (the fake Nextcloud holds the download until the test releases it)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from async_wait import until
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import PullApp, acked

# (action type, payload, who still reads the file afterwards, whether Nextcloud still has the file)
DENY = {"op": "deny", "userIds": ["bob1"], "sourceId": "files__default: 7001"}
CASES: list[tuple[str, dict[str, Any], set[str], bool]] = [
    ("update_access_source_id", DENY, {"alice1"}, True),
    ("update_access_decl_source_id", {"userIds": ["alice2"], "sourceId": "files__default: 7002"}, {"alice2"}, True),
    ("delete_user_id", {"userId": "bob3"}, {"alice3"}, True),
    ("delete_source_ids", {"sourceIds": ["files__default: 7004"]}, set(), False),
    ("delete_provider_id", {"providerId": "files__default"}, set(), False),
]


async def _waiting_or_applied(pull_app: PullApp, timeout_s: float = 30.0) -> None:
    """Until the action waits for the ingest of its file, or was applied already (the race). Acknowledged is neither:
    the actions loop acknowledges an action once it is stored, before it reaches the SourceOrder."""
    deadline = time.monotonic() + timeout_s
    while pull_app.engine.order.snapshot()["changes_waiting"] != 1:
        if (await pull_app.status())["loops"]["actions"]["counters"].get("applied"):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for the action to wait or to be applied")
        await asyncio.sleep(0.02)


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
    nextcloud.add_action(action, payload)
    await _waiting_or_applied(pull_app)
    release.set()
    await until(lambda: row in acked(nextcloud, "files"), what="the file's row done")
    # the row is acknowledged after the ingest lets go of the source, so the action may still be on its way
    await pull_app.actions_applied()
    for user in users:
        found = source_id in await pull_app.search(user, f"{word} project budget")
        assert found == (user in readers), f"{action}: does {user} reach {source_id} after both finished?"
