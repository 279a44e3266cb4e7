"""A content-provider item lists its readers as of its submission, not of the poll (the PHP app stores them in the
queue row and sends later changes to the actions queue only): an action applied before the item is claimed, while
the item waited in the queue, must still win over that list."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from async_wait import until
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import PullApp, acked

from quart_app.pull.queue_items import DocumentItem
from quart_app.pull.queued_readers import readers_after
from quart_app.store.pull_action_store import ReceivedAction

SOURCE = "mail__mail: 77"
# (action, its payload, who may read the mail once both are done)
CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": SOURCE}, {"alice"}),
    ("update_access_decl_source_id", {"userIds": ["alice"], "sourceId": SOURCE}, {"alice"}),
    ("update_access_provider_id", {"op": "deny", "userIds": ["bob"], "providerId": "mail__mail"}, {"alice"}),
    ("delete_user_id", {"userId": "bob"}, {"alice"}),
    ("delete_source_ids", {"sourceIds": [SOURCE]}, set()),
    ("delete_provider_id", {"providerId": "mail__mail"}, set()),
]


@pytest.mark.parametrize(("action", "payload", "readers"), CASES, ids=[case[0] for case in CASES])
async def test_an_action_applied_while_a_provider_item_waits_in_the_queue_wins_over_its_readers(
    pull_app: PullApp, nextcloud: FakePullNextcloud, action: str, payload: dict[str, Any], readers: set[str]
) -> None:
    # the documents queue answers nothing useful for now (a backlog ahead of the mail, Nextcloud busy)
    nextcloud.endpoint_faults["documents"] = deque([500] * 100_000)
    row = nextcloud.add_content_item(["alice", "bob"], item_id="77", content="The wombat77x budget review is Friday.")
    # then the mail app takes bob's access (or the mail) away: queued as an action, applied before the mail is claimed
    applied = nextcloud.add_action(action, payload)
    await until(lambda: applied in acked(nextcloud, "actions"), what="the action stored")
    await pull_app.actions_applied()
    nextcloud.endpoint_faults["documents"].clear()
    await until(lambda: row in acked(nextcloud, "content_providers"), what="the mail's row done")
    await pull_app.drain_embeddings()
    for user in ("alice", "bob"):
        found = SOURCE in await pull_app.search(user, "wombat77x budget review")
        assert found == (user in readers), f"{action}: does {user} reach the mail?"


def _action(type: str, payload: dict[str, Any]) -> ReceivedAction:
    return ReceivedAction(1, type, payload)


def test_the_last_action_naming_a_reader_decides_and_an_allow_adds_no_reader_the_item_does_not_list() -> None:
    item = DocumentItem(
        "content_providers", 1, SOURCE, ["alice", "bob"], "Re: budget", "text/plain", 1, "mail__mail", 3, "x"
    )
    deny = _action("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": SOURCE})
    allow = _action("update_access_source_id", {"op": "allow", "userIds": ["bob", "carol"], "sourceId": SOURCE})
    other = _action("delete_source_ids", {"sourceIds": ["mail__mail: 78"]})
    bare = _action("delete_provider_id", {"providerId": "mail"})
    assert readers_after(item, [deny], listed_only=True) == ["alice"]
    assert readers_after(item, [deny, allow], listed_only=True) == ["alice", "bob"]
    assert readers_after(item, [allow, deny, other], listed_only=True) == ["alice"]
    assert readers_after(item, [bare], listed_only=True) == []
