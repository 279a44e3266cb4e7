"""Queue row ids Nextcloud reuses: after a restore of its database from a backup, or its queue table emptied with its
ids restarted, a new row may carry the id of one we recorded. Such a row is applied or indexed like any other: not
skipped as a replay of the recorded one, and not deleted unprocessed by a DELETE meant for the recorded one."""

from __future__ import annotations

from typing import Any

import psycopg
from async_wait import until
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import PullApp, acked


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
