"""The PHP app's queue items (5.4+), validated one by one: a bad item is reported with its reason, never fatal.

Rules follow upstream's validation (pull-contract section 2.2 and 2.5) with two leniencies that PHP cannot notice:
item ids may contain '_' and '.', and `delete_provider_id` accepts the bare provider id PHP < 5.5 sends
(context_chat#258). Every field is also checked as the push routes check theirs (source_fields): what PostgreSQL
cannot store would fail in the database, look transient and be retried (or block the actions queue) forever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast

from quart_app.loaders.registry import SUPPORTED_MIMETYPES, canonical_mimetype
from quart_app.source_fields import (
    BARE_PROVIDER_ID_RE,
    MAX_PROVIDER_ID_CHARS,
    MAX_SOURCE_ID_CHARS,
    QUEUE_REFERENCE_RE,
    fits_bigint,
    id_problem,
    is_valid_provider_id,
    length_problem,
    parse_bigint,
    php_array_key,
    shown,
)
from quart_app.store.pull_action_store import ReceivedAction

QueueKind = Literal["files", "content_providers"]


class InvalidItemError(ValueError):
    """A queue item that can never be processed; it is acknowledged and counted, with this reason logged."""


@dataclass(frozen=True, slots=True)
class DocumentItem:
    """One claimed document: a file to fetch (content None) or a content-provider item with its text."""

    kind: QueueKind
    row_id: int
    source_id: str
    user_ids: list[str]
    title: str
    mimetype: str
    modified: int
    provider: str
    size: int
    content: str | None


@dataclass(frozen=True, slots=True)
class RejectedItem:
    """A queue row that failed validation."""

    kind: str
    row_id: str
    reason: str


def parse_documents(data: Any) -> tuple[list[DocumentItem], list[RejectedItem]]:
    """The `data` of GET …/queues/documents split into valid items and rejected rows (each with a reason)."""
    if not isinstance(data, dict):
        raise InvalidItemError(f"the documents queue answered {type(data).__name__}, not an object")
    valid: list[DocumentItem] = []
    rejected: list[RejectedItem] = []
    kinds: tuple[QueueKind, ...] = ("files", "content_providers")
    for kind in kinds:
        rows = _rows_by_id(data.get(kind) or {})
        for row_id, raw in rows.items():
            try:
                valid.append(document_item(kind, row_id, raw))
            except InvalidItemError as exc:
                rejected.append(RejectedItem(kind, str(row_id), str(exc)))
    return valid, rejected


def row_id_number(row_id: Any) -> int | None:
    """A queue row id as Nextcloud sends it (a JSON key of ASCII digits, or an int), or None."""
    if isinstance(row_id, int) and not isinstance(row_id, bool):
        return row_id
    # int() also reads ' 7', '+7' and an Arabic-Indic seven as 7: acknowledging that would delete another row
    if isinstance(row_id, str) and row_id.isascii() and row_id.isdigit():
        return int(row_id)
    return None


def _rows_by_id(rows: Any) -> dict[Any, Any]:
    """A queue's rows by row id. PHP serialises an empty array as [] when it is not cast to an object; in a list that
    is not empty, a row's id is its own "id" (an action's), never its position: that would acknowledge other rows."""
    if isinstance(rows, dict):
        return rows
    if not isinstance(rows, list):
        return {}
    return {_listed_row_id(position, row): row for position, row in enumerate(rows)}


def _listed_row_id(position: int, row: Any) -> Any:
    row_id = row.get("id") if isinstance(row, dict) else None
    return row_id if row_id is not None else f"#{position} (no id)"


def _row_id(row_id: Any) -> int:
    if (number := row_id_number(row_id)) is None:
        raise InvalidItemError(f"queue row id {row_id!r} is not a number")
    return number


def _user_id(raw: Any, name: str) -> str:
    raw = php_array_key(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidItemError(f"{name} must contain only non-empty strings")
    if problem := id_problem(raw):
        raise InvalidItemError(f"{name} {shown(raw)} {problem}")
    return raw.strip()


def _texts(raw: Any, name: str) -> list[str]:
    """A list of user ids as texts (an int as the PHP app sends a numeric one), blank ones included."""
    users = [php_array_key(user) for user in raw] if isinstance(raw, list) else None
    if users is None or not all(isinstance(user, str) for user in users):
        raise InvalidItemError(f"{name} must be a list of strings")
    return cast(list[str], users)


def _user_ids(raw: Any, name: str = "userIds") -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise InvalidItemError(f"{name} must be a non-empty list")
    # one entry per mount: the same user may be listed several times
    return list(dict.fromkeys(_user_id(user, name) for user in raw))


def _bigint(raw: Any, name: str) -> int:
    """An int, a float (PHP sends sizes above 2 GiB as floats) or a decimal string that fits PostgreSQL's bigint."""
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and math.isfinite(raw):  # int() raises on NaN and infinity
        value = int(raw)
    elif isinstance(raw, str):  # isdigit() would accept '²', which int() refuses
        value = parse_bigint(raw.strip())
    if value is None or not fits_bigint(value):
        quoted = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:40] + "…"
        raise InvalidItemError(f"{name} must be a whole number between -2^63 and 2^63-1, not {quoted}")
    return value


def document_item(kind: QueueKind, row_id: Any, raw: Any) -> DocumentItem:
    """One queue row as a DocumentItem, or InvalidItemError saying what is wrong with it."""
    rid = _row_id(row_id)
    if not isinstance(raw, dict):
        raise InvalidItemError(f"item is {type(raw).__name__}, not an object")
    reference = _source_id(raw.get("reference"), "reference")
    provider = _provider_id(raw.get("provider"), "provider")
    title = raw.get("title")
    if not isinstance(title, str):
        raise InvalidItemError("title must be a string")
    mimetype = raw.get("type")
    if not isinstance(mimetype, str) or not mimetype.strip():
        raise InvalidItemError("type (the mimetype) must be a non-empty string")
    if problem := id_problem(mimetype):
        raise InvalidItemError(f"type {shown(mimetype)} {problem}")
    size = _bigint(raw.get("size", 0), "size")
    if size < 0:
        raise InvalidItemError(f"size must be >= 0, not {size}")
    content = raw.get("content")
    if kind == "files":
        if content is not None:
            raise InvalidItemError("a file item must have content null (its bytes are fetched)")
        if canonical_mimetype(mimetype) not in SUPPORTED_MIMETYPES:
            raise InvalidItemError(f"mimetype {mimetype!r} is not supported for files")
    elif not isinstance(content, str) or not content.strip():
        raise InvalidItemError("a content-provider item must have non-empty content")
    return DocumentItem(
        kind=kind,
        row_id=rid,
        source_id=reference,
        user_ids=_user_ids(raw.get("userIds")),
        title=title,
        mimetype=mimetype.strip(),
        modified=_bigint(raw.get("modified"), "modified"),
        provider=provider,
        size=size,
        content=content if kind == "content_providers" else None,
    )


ACTION_TYPES = (
    "delete_source_ids",
    "delete_provider_id",
    "delete_user_id",
    "update_access_source_id",
    "update_access_provider_id",
    "update_access_decl_source_id",
)


def _string(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidItemError(f"payload.{key} must be a non-empty string")
    return value  # not stripped: an id is matched as sent, a trailing newline included


def _source_id(value: Any, name: str) -> str:
    if isinstance(value, str) and (problem := length_problem(value, MAX_SOURCE_ID_CHARS)):
        raise InvalidItemError(f"{name} {shown(value)} {problem}")
    if not isinstance(value, str) or not QUEUE_REFERENCE_RE.match(value):
        raise InvalidItemError(f"{name} {value!r} is not '<app>__<provider>: <item id>'")
    return value


def _provider_id(value: Any, name: str) -> str:
    if isinstance(value, str) and (problem := length_problem(value, MAX_PROVIDER_ID_CHARS)):
        raise InvalidItemError(f"{name} {shown(value)} {problem}")
    if not isinstance(value, str) or not is_valid_provider_id(value):
        raise InvalidItemError(f"{name} {value!r} is not '<app>__<provider>'")
    return value


def _op(payload: dict[str, Any]) -> str:
    op = payload.get("op")
    if op not in ("allow", "deny"):
        raise InvalidItemError(f"payload.op must be 'allow' or 'deny', not {op!r}")
    return str(op)


def parse_actions(data: Any) -> tuple[list[ReceivedAction], list[RejectedItem]]:
    """The `data` of GET …/queues/actions: valid actions in queue order, and rejected rows with reasons."""
    rows = data.get("actions") if isinstance(data, dict) else None
    if not isinstance(rows, dict | list):
        raise InvalidItemError("the actions queue answered without an 'actions' object")
    rows = _rows_by_id(rows)
    valid: list[ReceivedAction] = []
    rejected: list[RejectedItem] = []
    for row_id, raw in rows.items():
        try:
            valid.append(action_item(row_id, raw))
        except InvalidItemError as exc:
            rejected.append(RejectedItem("actions", str(row_id), str(exc)))
    valid.sort(key=lambda item: item.row_id)  # the queue's order is the order the changes happened
    return valid, rejected


def action_item(row_id: Any, raw: Any) -> ReceivedAction:
    """One action row, its payload normalised for its type, or InvalidItemError."""
    rid = _row_id(row_id)
    if not isinstance(raw, dict):
        raise InvalidItemError(f"action is {type(raw).__name__}, not an object")
    kind = raw.get("type")
    payload = raw.get("payload")
    if kind not in ACTION_TYPES:
        raise InvalidItemError(f"action type {kind!r} is not one of {', '.join(ACTION_TYPES)}")
    if not isinstance(payload, dict):
        raise InvalidItemError("payload must be an object")
    clean: dict[str, Any]
    if kind == "delete_source_ids":
        ids = payload.get("sourceIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise InvalidItemError("payload.sourceIds must be a list of strings")
        clean = {"sourceIds": [i for i in ids if QUEUE_REFERENCE_RE.match(i)]}
    elif kind == "delete_provider_id":
        provider = _string(payload, "providerId")
        if not is_valid_provider_id(provider) and not BARE_PROVIDER_ID_RE.match(provider):
            raise InvalidItemError(f"payload.providerId {provider!r} is not a provider id")
        clean = {"providerId": provider}
    elif kind == "delete_user_id":
        clean = {"userId": _user_id(payload.get("userId"), "payload.userId")}
    elif kind == "update_access_source_id":
        clean = {
            "op": _op(payload),
            "userIds": _user_ids(payload.get("userIds"), "payload.userIds"),
            "sourceId": _source_id(_string(payload, "sourceId"), "payload.sourceId"),
        }
    elif kind == "update_access_provider_id":
        provider = _provider_id(_string(payload, "providerId"), "payload.providerId")
        clean = {
            "op": _op(payload),
            "userIds": _user_ids(payload.get("userIds"), "payload.userIds"),
            "providerId": provider,
        }
    else:
        # declarative: the full list of readers; an empty list means nobody may read it any more
        users = _texts(payload.get("userIds"), "payload.userIds")
        readers = [_user_id(u, "payload.userIds") for u in users if u.strip()]
        if users and not readers:
            # not "nobody may read it", which deletes the document: the PHP app never declares blank readers
            raise InvalidItemError("payload.userIds holds only blank ids")
        clean = {
            "userIds": list(dict.fromkeys(readers)),
            "sourceId": _source_id(_string(payload, "sourceId"), "payload.sourceId"),
        }
    return ReceivedAction(rid, str(kind), clean)
