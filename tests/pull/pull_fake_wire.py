"""The fake Nextcloud's wire: its routes' paths, what it records of a request, how it answers (OCS envelope, chunked
bodies, dropped connections), and the files and queue rows it serves (tests/pull/nextcloud_pull_fake.py)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

# what Nextcloud's OCS router answers for a route no app serves (seen on Nextcloud 34 for PHP app 5.3.1's queues)
UNKNOWN_OCS_ROUTE = (
    "Invalid query, please check the syntax. API specifications are here:"
    " http://www.freedesktop.org/wiki/Specifications/open-collaboration-services."
)

LOCK_TIMEOUT_S = 60 * 60 * 24
# longest a held download waits for its test to release it
HOLD_LIMIT_S = 60.0
_CC = "/ocs/v2.php/apps/context_chat"
_TP = "/ocs/v2.php/taskprocessing/tasks_provider"
_AI = "/ocs/v1.php/apps/app_api/api/v1/ai_provider/task_processing"
_T2T = "/ocs/v1.php/taskprocessing"
TEXT2TEXT = "core:text2text"
_FILE_ERRORS = {404: "Node is not a file or could not be found.", 422: "File could not be opened for reading."}
_CONTEXT_CHAT_ROUTES = {"documents", "ack_documents", "actions", "ack_actions", "files", "resolve", "enrich"}
_TEXT2TEXT_ROUTES = {"text2text_schedule", "text2text_task", "text2text_cancel"}
_FILE_SOURCE = re.compile(r"^files__default: (\d+)$")
_DONE = ("STATUS_SUCCESSFUL", "STATUS_FAILED")
_DOC_KINDS = ("files", "content_providers")
_CAPABILITIES = {
    "version": {"major": 34, "minor": 0, "micro": 1, "string": "34.0.1", "edition": "", "extendedSupport": False},
    "capabilities": {"app_api": {"loglevel": 1, "version": "34.0.1"}},
}


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    json: Any  # decoded JSON body; None when empty; the text when not JSON
    user: str  # decoded from AUTHORIZATION-APP-API ("" for queue calls or when missing)


@dataclass
class _File:
    user_ids: list[str]
    title: str
    content: bytes
    mimetype: str
    modified: int


@dataclass
class _Row:
    id: int
    item: dict[str, Any] | None = None  # served as-is; None → built from the file at claim time
    file_id: int | None = None
    locked_at: float | None = None


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None  # sent with chunked transfer encoding when set
    chunk_delay: float = 0.0
    hold: threading.Event | None = None  # the body is sent once this is set
    drop_after: int | None = None  # close the connection after this many chunks
    drop: bool = False  # close the connection without answering


def ocs_envelope(data: Any, statuscode: int = 200, message: str = "") -> bytes:
    ok = statuscode in (100, 200)
    meta = {"status": "ok" if ok else "failure", "statuscode": statuscode, "message": message or ("OK" if ok else "")}
    return json.dumps({"ocs": {"meta": meta, "data": data}}).encode()


def _shape_value_ok(shape_type: Any, value: Any) -> bool:
    if shape_type == 0:  # NUMBER
        return isinstance(value, int | float) and not isinstance(value, bool)
    if shape_type == 1:  # TEXT
        return isinstance(value, str)
    if shape_type == 11:  # LIST_OF_TEXTS
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return True


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return re.fullmatch(r"q=0(\.0*)?", params.replace(" ", "").lower()) is None
    return False
