"""An access change applied between the documents poll and the claim of its file: the file is indexed with the
readers of after the change, not left locked in Nextcloud's queue for a day (the PHP app serves a claimed row again
only after 24 h)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from async_wait import until
from nextcloud_pull_fake import HOLD_LIMIT_S, FakePullNextcloud, RecordedRequest
from pull_kit import PullApp, acked

FILE_ID = 7101
SOURCE = f"files__default: {FILE_ID}"
# (action, its payload, who may read the file in Nextcloud after it)
CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": SOURCE}, ["alice"]),
    ("update_access_source_id", {"op": "allow", "userIds": ["carol"], "sourceId": SOURCE}, ["alice", "bob", "carol"]),
    ("update_access_decl_source_id", {"userIds": ["alice", "carol"], "sourceId": SOURCE}, ["alice", "carol"]),
    ("delete_user_id", {"userId": "bob"}, ["alice"]),
    ("delete_source_ids", {"sourceIds": [SOURCE]}, []),
]


@pytest.mark.parametrize(
    ("action", "payload", "readers"), CASES, ids=["deny", "allow", "declared", "user_gone", "deleted"]
)
async def test_an_access_change_between_the_poll_and_the_claim_is_indexed_at_once(
    pull_app: PullApp, nextcloud: FakePullNextcloud, action: str, payload: dict[str, Any], readers: list[str]
) -> None:
    polled, release = threading.Event(), threading.Event()

    def hold_the_poll_of_the_file(req: RecordedRequest, status: int) -> None:
        """The poll listing the file has its answer ready (readers alice and bob), then waits for the test."""
        row = nextcloud.file_row_id(FILE_ID)
        if req.path.endswith("/queues/documents") and row in nextcloud.locked_rows()["files"] and not polled.is_set():
            polled.set()
            release.wait(HOLD_LIMIT_S)

    nextcloud.on_answer = hold_the_poll_of_the_file
    nextcloud.add_file(["alice", "bob"], "files/plan.txt", b"The echidna101x plan is approved.", file_id=FILE_ID)
    row = nextcloud.file_row_id(FILE_ID)
    await until(polled.is_set, what="the poll listing the file")
    if readers:
        nextcloud.set_file_users(FILE_ID, readers)
    else:
        nextcloud.remove_file(FILE_ID)
    applied = nextcloud.add_action(action, payload)
    await until(lambda: applied in acked(nextcloud, "actions"), what="the action stored")
    await pull_app.actions_applied()
    release.set()
    for _ in range(1500):
        documents = (await pull_app.status())["loops"]["documents"]["counters"]
        if row in acked(nextcloud, "files") or documents.get("left_locked"):
            break
        await asyncio.sleep(0.02)
    assert row in acked(nextcloud, "files"), f"the file's row is left locked for 24 h: {documents}"
    await pull_app.drain_embeddings()
    for user in ("alice", "bob", "carol"):
        found = SOURCE in await pull_app.search(user, "echidna101x plan approved")
        assert found == (user in readers), f"{action}: does {user} reach the file?"
