"""The PHP app's queue items (5.4+), validated one by one: a bad item is reported with its reason, never fatal.

Rules follow upstream's validation (pull-contract section 2.2 and 2.5) with two leniencies that PHP cannot notice:
item ids may contain '_' and '.', and `delete_provider_id` accepts the bare provider id PHP < 5.5 sends
(context_chat#258).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from quart_app.loaders.registry import SUPPORTED_MIMETYPES, canonical_mimetype

FILES_PROVIDER = "files__default"
REFERENCE_RE = re.compile(r"^[a-zA-Z0-9_-]+__[a-zA-Z0-9_-]+: [a-zA-Z0-9:._-]+$")
PROVIDER_RE = re.compile(r"^[a-zA-Z0-9_-]+__[a-zA-Z0-9_-]+$")
BARE_PROVIDER_RE = re.compile(r"^[a-zA-Z0-9_-]+$")

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
        rows = data.get(kind) or {}
        if not isinstance(rows, dict):  # PHP serialises an empty array as [] when it is not cast to an object
            rows = dict(enumerate(rows)) if isinstance(rows, list) else {}
        for row_id, raw in rows.items():
            try:
                valid.append(document_item(kind, row_id, raw))
            except InvalidItemError as exc:
                rejected.append(RejectedItem(kind, str(row_id), str(exc)))
    return valid, rejected


def _row_id(row_id: Any) -> int:
    try:
        return int(row_id)
    except (TypeError, ValueError):
        raise InvalidItemError(f"queue row id {row_id!r} is not a number") from None


def _user_ids(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise InvalidItemError("userIds must be a non-empty list")
    if not all(isinstance(user, str) and user.strip() for user in raw):
        raise InvalidItemError("userIds must contain only non-empty strings")
    # one entry per mount: the same user may be listed several times
    return list(dict.fromkeys(user.strip() for user in raw))


def _integer(raw: Any, name: str) -> int:
    if isinstance(raw, bool):
        raise InvalidItemError(f"{name} must be a number, not {raw!r}")
    if isinstance(raw, int | float):
        return int(raw)
    # isdigit() would accept '²', which int() refuses: one such item must not fail the whole batch
    if isinstance(raw, str) and raw.strip().lstrip("-").isdecimal():
        return int(raw.strip())
    raise InvalidItemError(f"{name} must be a number, not {raw!r}")


def document_item(kind: QueueKind, row_id: Any, raw: Any) -> DocumentItem:
    """One queue row as a DocumentItem, or InvalidItemError saying what is wrong with it."""
    rid = _row_id(row_id)
    if not isinstance(raw, dict):
        raise InvalidItemError(f"item is {type(raw).__name__}, not an object")
    reference = raw.get("reference")
    if not isinstance(reference, str) or not REFERENCE_RE.match(reference):
        raise InvalidItemError(f"reference {reference!r} is not '<app>__<provider>: <item id>'")
    provider = raw.get("provider")
    if not isinstance(provider, str) or not PROVIDER_RE.match(provider):
        raise InvalidItemError(f"provider {provider!r} is not '<app>__<provider>'")
    title = raw.get("title")
    if not isinstance(title, str):
        raise InvalidItemError("title must be a string")
    mimetype = raw.get("type")
    if not isinstance(mimetype, str) or not mimetype.strip():
        raise InvalidItemError("type (the mimetype) must be a non-empty string")
    size = _integer(raw.get("size", 0), "size")
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
        modified=_integer(raw.get("modified"), "modified"),
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


@dataclass(frozen=True, slots=True)
class ActionItem:
    """One claimed action with its payload checked for its type."""

    row_id: int
    type: str
    payload: dict[str, Any]


def _string(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidItemError(f"payload.{key} must be a non-empty string")
    return value.strip()


def _source_id(payload: dict[str, Any], key: str) -> str:
    value = _string(payload, key)
    if not REFERENCE_RE.match(value):
        raise InvalidItemError(f"payload.{key} {value!r} is not '<app>__<provider>: <item id>'")
    return value


def _op(payload: dict[str, Any]) -> str:
    op = payload.get("op")
    if op not in ("allow", "deny"):
        raise InvalidItemError(f"payload.op must be 'allow' or 'deny', not {op!r}")
    return str(op)


def parse_actions(data: Any) -> tuple[list[ActionItem], list[RejectedItem]]:
    """The `data` of GET …/queues/actions: valid actions in queue order, and rejected rows with reasons."""
    rows = data.get("actions") if isinstance(data, dict) else None
    if isinstance(rows, list):
        rows = dict(enumerate(rows))
    if not isinstance(rows, dict):
        raise InvalidItemError("the actions queue answered without an 'actions' object")
    valid: list[ActionItem] = []
    rejected: list[RejectedItem] = []
    for row_id, raw in rows.items():
        try:
            valid.append(action_item(row_id, raw))
        except InvalidItemError as exc:
            rejected.append(RejectedItem("actions", str(row_id), str(exc)))
    valid.sort(key=lambda item: item.row_id)  # the queue's order is the order the changes happened
    return valid, rejected


def action_item(row_id: Any, raw: Any) -> ActionItem:
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
        clean = {"sourceIds": [i for i in ids if REFERENCE_RE.match(i)]}
    elif kind == "delete_provider_id":
        provider = _string(payload, "providerId")
        if not PROVIDER_RE.match(provider) and not BARE_PROVIDER_RE.match(provider):
            raise InvalidItemError(f"payload.providerId {provider!r} is not a provider id")
        clean = {"providerId": provider}
    elif kind == "delete_user_id":
        clean = {"userId": _string(payload, "userId")}
    elif kind == "update_access_source_id":
        clean = {
            "op": _op(payload),
            "userIds": _user_ids(payload.get("userIds")),
            "sourceId": _source_id(payload, "sourceId"),
        }
    elif kind == "update_access_provider_id":
        provider = _string(payload, "providerId")
        if not PROVIDER_RE.match(provider):
            raise InvalidItemError(f"payload.providerId {provider!r} is not '<app>__<provider>'")
        clean = {"op": _op(payload), "userIds": _user_ids(payload.get("userIds")), "providerId": provider}
    else:
        users = payload.get("userIds")
        # declarative: the full list of readers; an empty list means nobody may read it any more
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise InvalidItemError("payload.userIds must be a list of strings")
        clean = {"userIds": [u for u in dict.fromkeys(users) if u.strip()], "sourceId": _source_id(payload, "sourceId")}
    return ActionItem(rid, str(kind), clean)
