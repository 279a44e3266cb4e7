"""Declarative access actions: an empty reader list means nobody may read the document (it is deleted); a list of
blank ids is a malformed action, not that."""

from __future__ import annotations

from quart_app.pull.queue_items import parse_actions

SOURCE = "files__default: 7"


def _declare(user_ids: list[str]) -> dict[str, object]:
    return {"type": "update_access_decl_source_id", "payload": {"userIds": user_ids, "sourceId": SOURCE}}


def test_an_empty_declaration_means_nobody_and_blank_ids_are_refused() -> None:
    valid, rejected = parse_actions({"actions": {"1": _declare([]), "2": _declare(["", "  "]), "3": _declare([" a"])}})
    assert [(a.row_id, a.payload["userIds"]) for a in valid] == [(1, []), (3, ["a"])]
    assert [(bad.row_id, bad.reason) for bad in rejected] == [("2", "payload.userIds holds only blank ids")]
