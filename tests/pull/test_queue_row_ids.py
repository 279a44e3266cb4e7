"""Queue row ids: only what Nextcloud sends (ASCII digits, ints) is a row id; anything int() merely tolerates would
acknowledge another row, and one int() refuses crashed the acknowledgement of the whole batch; neither is a listed
row's position."""

from __future__ import annotations

import pytest

from quart_app.pull.queue_items import RejectedItem, parse_actions, parse_documents
from quart_app.pull.queue_loop import ServedRows, rejected_row_ids

DELETE_BOB = {"type": "delete_user_id", "payload": {"userId": "bob"}}


@pytest.mark.parametrize("row_id", ["²", "\u0667", " 7", "+7", "7\n", "-7", "", "7.0"])
def test_an_odd_row_id_is_rejected_and_never_acknowledged(row_id: str) -> None:
    valid, rejected = parse_actions({"actions": {row_id: DELETE_BOB, "8": DELETE_BOB}})
    assert [action.row_id for action in valid] == [8]
    assert [bad.row_id for bad in rejected] == [row_id]
    assert "is not a number" in rejected[0].reason
    assert rejected_row_ids(rejected, "actions") == []


def test_plain_row_ids_are_acknowledged_per_queue() -> None:
    valid, rejected = parse_documents({"files": {"12": {"userIds": []}}, "content_providers": {"13": "not an item"}})
    assert valid == []
    assert rejected_row_ids(rejected, "files") == [12]
    assert rejected_row_ids(rejected, "content_providers") == [13]


def test_a_listed_action_is_known_by_its_own_id_never_by_its_position() -> None:
    listed = [{"id": 41, **DELETE_BOB}, DELETE_BOB]  # PHP sends a list only when it is empty; a list must not misfire
    valid, rejected = parse_actions({"actions": listed})
    assert [action.row_id for action in valid] == [41]
    assert [bad.row_id for bad in rejected] == ["#1 (no id)"] and rejected_row_ids(rejected, "actions") == []


def test_listed_documents_have_no_row_id_to_acknowledge() -> None:
    valid, rejected = parse_documents({"files": [{"userIds": ["alice"]}], "content_providers": []})
    assert valid == [] and [bad.row_id for bad in rejected] == ["#0 (no id)"]
    assert rejected_row_ids(rejected, "files") == []


def test_an_old_row_id_may_be_named_again_only_where_no_unclaimed_row_can_hold_it() -> None:
    full = ServedRows.of(2, [7, 9], [], "actions")  # as many as asked: rows above 9 may wait unclaimed
    assert [row for row in [3, 9, 10] if full.may_name(row)] == [3, 9]
    short = ServedRows.of(3, [7], [RejectedItem("actions", "8", "bad")], "actions")  # fewer: no row was left
    assert short.may_name(10) and ServedRows(3, 0, None).may_name(10)
    odd = ServedRows.of(2, [7], [RejectedItem("actions", "x", "bad")], "actions")  # an odd id is a row served too
    assert not odd.may_name(8) and odd.may_name(7)
