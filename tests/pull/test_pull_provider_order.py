"""A content-provider item lists its readers as of its submission, not of the poll (the PHP app stores them in the
queue row and sends later changes to the actions queue only): an action applied before the item is claimed, while
the item waited in the queue, must still win over that list; also when its DELETE was lost and Nextcloud serves the
row again days later."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from async_wait import until, wait_until
from nextcloud_pull_fake import FakePullNextcloud
from pull_fake_wire import RecordedRequest
from pull_kit import PullApp, acked, days_pass

from quart_app.app_settings import AppSettings
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


def _unconfirmed_rows(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT row_id FROM pull_unconfirmed_provider_rows ORDER BY row_id")]


def _action_polls(nextcloud: FakePullNextcloud) -> int:
    return sum(1 for r in nextcloud.requests if r.method == "GET" and r.path.endswith("/queues/actions"))


async def _documents_once(pull_app: PullApp, done: Callable[[dict[str, int]], bool], what: str) -> None:
    async def reached() -> bool:
        return done((await pull_app.status())["loops"]["documents"]["counters"])

    await wait_until(reached, what=f"the documents loop: {what}")


async def test_a_provider_row_served_again_days_after_its_lost_acknowledgement_keeps_a_removed_reader_out(
    pull_settings: AppSettings, fresh_dsn: str, nextcloud: FakePullNextcloud
) -> None:
    """The mail's DELETE is lost (at the next start too) and bob's access is taken away; Nextcloud serves the row again
    three days later, listing the readers of its submission. The deny was forgotten two days after its own
    acknowledgement, so it no longer applied to that list: bob read the mail again."""
    nextcloud.endpoint_faults["ack_documents"] = deque([500] * 100_000)
    source, words = "mail__mail: 88", "quoll88x budget review"
    async with PullApp(pull_settings, nextcloud) as pull_app:
        await pull_app.enable()
        row = nextcloud.add_content_item(
            ["alice", "bob"], item_id="88", content="The quoll88x budget review is Monday."
        )
        await _documents_once(pull_app, lambda c: c.get("ack_failures", 0) >= 1, "the mail indexed, its DELETE lost")
        assert source in await pull_app.search("bob", words)
        deny = nextcloud.add_action("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": source})
        await until(lambda: deny in acked(nextcloud, "actions"), what="the deny acknowledged")
        await pull_app.actions_applied()
        assert source not in await pull_app.search("bob", words)
    days_pass(fresh_dsn, nextcloud, 3)
    # the row is served only once the actions loop's start (where it forgets what is due) is over
    nextcloud.endpoint_faults["documents"] = deque([500] * 100_000)
    async with PullApp(pull_settings, nextcloud) as pull_app:
        await pull_app.enable()
        polls = _action_polls(nextcloud)
        await until(lambda: _action_polls(nextcloud) > polls, what="the actions queue polled after the start")
        nextcloud.endpoint_faults["documents"].clear()
        await _documents_once(pull_app, lambda c: c.get("indexed", 0) >= 1, "the mail's row served again")
        assert nextcloud.locked_rows()["content_providers"] == [row]
        assert source not in await pull_app.search("bob", words)
        assert source in await pull_app.search("alice", words)


def _document_polls(nextcloud: FakePullNextcloud) -> int:
    return sum(1 for r in nextcloud.requests if r.method == "GET" and r.path.endswith("/queues/documents"))


def _drained_at(dsn: str) -> object:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT drained_at FROM pull_provider_queue_drained").fetchone()
        return None if row is None else row[0]


async def test_a_provider_item_first_served_days_after_a_removal_keeps_the_removed_reader_out(
    pull_settings: AppSettings, fresh_dsn: str, nextcloud: FakePullNextcloud
) -> None:
    """A backlog: the mail waits in Nextcloud's queue, never served, while bob's access is taken away; it is served for
    the first time three days later, listing the readers of its submission. The deny was forgotten two days after its
    acknowledgement, so bob read the mail."""
    nextcloud.endpoint_faults["documents"] = deque([500] * 100_000)
    source, words = "mail__mail: 90", "numbat90x budget review"
    async with PullApp(pull_settings, nextcloud) as pull_app:
        await pull_app.enable()
        row = nextcloud.add_content_item(["alice", "bob"], item_id="90", content="The numbat90x budget review is on.")
        deny = nextcloud.add_action("update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": source})
        await until(lambda: deny in acked(nextcloud, "actions"), what="the deny acknowledged")
        await pull_app.actions_applied()
    days_pass(fresh_dsn, nextcloud, 3)
    async with PullApp(pull_settings, nextcloud) as pull_app:
        await pull_app.enable()
        polls = _action_polls(nextcloud)
        await until(lambda: _action_polls(nextcloud) > polls, what="the actions queue polled after the start")
        nextcloud.endpoint_faults["documents"].clear()
        await until(lambda: row in acked(nextcloud, "content_providers"), what="the mail's row done")
        await pull_app.drain_embeddings()
        assert source not in await pull_app.search("bob", words)
        assert source in await pull_app.search("alice", words)
        # the queue served fewer provider rows than asked: noted, so that what is due may go after all
        await until(lambda: _drained_at(fresh_dsn) is not None, what="the drained provider queue noted")


async def test_a_provider_rows_acknowledgement_lost_before_a_stop_is_sent_at_the_next_start(
    pull_settings: AppSettings, fresh_dsn: str, nextcloud: FakePullNextcloud
) -> None:
    """No document comes after the restart: the row stayed locked in Nextcloud until served again a day later."""
    nextcloud.endpoint_faults["ack_documents"] = deque([500] * 100_000)
    async with PullApp(pull_settings, nextcloud) as pull_app:
        await pull_app.enable()
        row = nextcloud.add_content_item(["alice"], item_id="89", content="The dunnart89x rota is out.")
        await _documents_once(pull_app, lambda c: c.get("ack_failures", 0) >= 1, "the mail indexed, its DELETE lost")
    nextcloud.endpoint_faults["ack_documents"].clear()
    assert nextcloud.locked_rows()["content_providers"] == [row]
    async with PullApp(pull_settings, nextcloud) as pull_app:
        await pull_app.enable()
        await until(lambda: row in acked(nextcloud, "content_providers"), what="the lost acknowledgement sent")
        assert nextcloud.queue_rows()["content_providers"] == []
        await until(lambda: _unconfirmed_rows(fresh_dsn) == [], what="the row noted as gone")


async def test_a_poll_serving_as_many_provider_rows_as_asked_is_not_noted_as_drained(
    pull_settings: AppSettings, fresh_dsn: str, nextcloud: FakePullNextcloud
) -> None:
    """Nextcloud may hold more rows behind a full batch: only a poll that comes back short is noted."""
    nextcloud.endpoint_faults["documents"] = deque([500] * 100_000)
    asked = pull_settings.config.doc_indexing_batch_size
    rows = [
        nextcloud.add_content_item(["alice"], item_id=f"9{i}", content=f"Mail {i} of the potoroo9x thread.")
        for i in range(asked)
    ]

    full_poll: list[int] = []  # how many documents polls there were once the full one was answered

    def fail_the_polls_after_the_first(req: RecordedRequest, status: int) -> None:
        if req.method == "GET" and req.path.endswith("/queues/documents") and status == 200:
            full_poll.append(_document_polls(nextcloud))
            nextcloud.endpoint_faults["documents"] = deque([500] * 100_000)
            nextcloud.on_answer = None

    async with PullApp(pull_settings, nextcloud) as pull_app:
        await pull_app.enable()
        nextcloud.on_answer = fail_the_polls_after_the_first
        nextcloud.endpoint_faults["documents"].clear()
        await until(lambda: set(rows) <= acked(nextcloud, "content_providers"), what="the full batch done")
        # the poll after the full one comes once its batch is over (where a drained poll is noted)
        await until(lambda: _document_polls(nextcloud) > full_poll[0], what="the documents queue polled again")
        assert _drained_at(fresh_dsn) is None
        nextcloud.endpoint_faults["documents"].clear()
        await until(lambda: _drained_at(fresh_dsn) is not None, what="the next, empty poll noted as drained")
