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


def test_numeric_user_ids_the_php_app_sends_as_json_numbers_are_user_ids() -> None:
    # ShareListener: array_keys() of a group share's access list turns the user id "12345" into the int 12345
    share = {"op": "allow", "userIds": [12345, "alice"], "sourceId": SOURCE}
    actions = {
        "1": {"type": "update_access_source_id", "payload": share},
        "2": _declare([67890]),  # type: ignore[list-item]
        "3": {"type": "delete_user_id", "payload": {"userId": 12345}},
        "4": _declare([True]),  # type: ignore[list-item]
        "5": _declare([1.5]),  # type: ignore[list-item]
    }
    valid, rejected = parse_actions({"actions": actions})
    assert [(a.row_id, a.payload.get("userIds", a.payload.get("userId"))) for a in valid] == [
        (1, ["12345", "alice"]),
        (2, ["67890"]),
        (3, "12345"),
    ]
    assert [bad.row_id for bad in rejected] == ["4", "5"]
