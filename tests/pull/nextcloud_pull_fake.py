"""A Nextcloud stand-in over real sockets for pull mode: context_chat 5.4 queues/files/util, TaskProcessing, AppAPI.

With `text2text_provider` set it offers core:text2text (nc_texttotext's LLM), answering only when the test calls
`finish_text2text`: a slow LLM.

Start `FakePullNextcloud()` as a context manager, fill it through `add_*`/`schedule_task`, script faults through the
public attributes, read `requests` and the helpers afterwards (spec: shared/reference/pull-contract.md §2).
OCS v2 answers carry the status as HTTP status; OCS v1 (AppAPI, capabilities) answers errors inside the envelope with
HTTP 200 like Nextcloud's V1Response (`ocs_v1_errors_in_envelope = False` → real HTTP codes).
Per request: record → `on_request` → route (404) → `delay_s` → `maintenance` (503) → `endpoint_faults` (0 = drop the
connection) → auth (412) → handler → `on_answer` (before the answer is sent).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import PurePosixPath
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local_http_server import LocalHttpServer

from appliance.app_client import signed_headers

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


class FakePullNextcloud:
    """Threaded HTTP/1.1 server on 127.0.0.1; `url` is its base URL. State is guarded by one lock."""

    def __init__(self, secret: str = "pull-secret-0123456789") -> None:
        self.secret = secret
        self.now: Callable[[], float] = time.time
        self.requests: list[RecordedRequest] = []
        self.pull_supported = True
        # off: the TaskProcessing schedule/task routes answer 404, and nc_texttotext gives up at once
        self.text2text_provider = False
        self.ocs_v1_errors_in_envelope = True
        self.endpoint_faults: dict[str, deque[int]] = {}
        self.delay_s: dict[str, float] = {}
        # the Retry-After header of a scripted fault answer, per status (a reverse proxy sends it with 503 too)
        self.fault_retry_after: dict[int, str] = {429: "1"}
        # while set, every route answers as Nextcloud's maintenance mode does (503 "Service unavailable")
        self.maintenance = threading.Event()
        self.maintenance_answers = 0
        # called with each request as it arrives (under no lock), e.g. to start maintenance mid-batch
        self.on_request: Callable[[RecordedRequest], None] | None = None
        # called with each request and its HTTP status once its handler has answered, before the answer is sent
        self.on_answer: Callable[[RecordedRequest, int], None] | None = None
        self.files: dict[int, _File] = {}
        self.folders: dict[int, list[int]] = {}
        self.users: set[str] = set()  # resolve_scope_list answers 404 for other users
        self.file_faults: dict[int, deque[int | str]] = {}
        self.slow_files: dict[int, float] = {}
        self.held_files: dict[int, threading.Event] = {}
        self.gzip_responses = False
        self.chunk_size = 8192
        self.file_fetches: Counter[int] = Counter()
        self.providers: dict[str, dict[str, Any]] = {}  # provider id -> {"provider": …, "customTaskType": …}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.init_status: list[Any] = []
        self._rows: dict[str, dict[int, _Row]] = {"files": {}, "content_providers": {}, "actions": {}}
        self._acked: dict[str, list[int]] = {"files": [], "content_providers": [], "actions": []}
        self._ids: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._http = LocalHttpServer(self._handler_class(), poll_s=0.05)

    @property
    def url(self) -> str:
        base_url: str = self._http.base_url
        return base_url

    def __enter__(self) -> FakePullNextcloud:
        self._http.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.__exit__(exc_type, exc, tb)

    def env(self, app_id: str = "context_chat_backend", app_version: str = "5.4.0") -> dict[str, str]:
        """The variables AppAPI gives an ExApp, pointing at this server."""
        return {"NEXTCLOUD_URL": self.url, "APP_ID": app_id, "APP_SECRET": self.secret, "APP_VERSION": app_version}

    def auth_headers(self, user: str = "", app_id: str = "context_chat_backend") -> dict[str, str]:
        """Valid ExApp headers (what nc_py_api sends)."""
        return {**signed_headers(user, secret=self.secret, app_id=app_id, version="5.4.0"), "OCS-APIRequest": "true"}

    def _new_row(self, kind: str, **fields: Any) -> int:
        self._ids[kind] += 1
        self._rows[kind][self._ids[kind]] = _Row(self._ids[kind], **fields)
        return self._ids[kind]

    def add_file(
        self,
        user_ids: list[str],
        title: str,
        content: bytes,
        mimetype: str = "text/plain",
        modified: int | None = None,
        file_id: int | None = None,
    ) -> int:
        """Create or replace a file and enqueue it unless a row for it exists; returns the file id (from 5001)."""
        with self._lock:
            if file_id is None:
                self._ids["file"] += 1
                file_id = 5000 + self._ids["file"]
            mtime = int(self.now()) if modified is None else modified
            self.files[file_id] = _File(list(user_ids), title, content, mimetype, mtime)
            self.users.update(user_ids)
            if not any(r.file_id == file_id for r in self._rows["files"].values()):
                self._new_row("files", file_id=file_id)
            return file_id

    def hold_file(self, file_id: int) -> threading.Event:
        """Downloads of the file send their headers, then wait until the returned event is set."""
        with self._lock:
            return self.held_files.setdefault(file_id, threading.Event())

    def set_file_users(self, file_id: int, user_ids: list[str]) -> None:
        """Who may read the file now (what the next claim of its row lists)."""
        with self._lock:
            self.files[file_id].user_ids = list(user_ids)

    def file_row_id(self, file_id: int) -> int | None:
        """The documents-queue row of a file, if one exists."""
        with self._lock:
            return next((r.id for r in self._rows["files"].values() if r.file_id == file_id), None)

    def remove_file(self, file_id: int) -> None:
        """Delete a file: fetches answer 404; a queued row for it is dropped silently when claimed (as PHP does)."""
        with self._lock:
            self.files.pop(file_id, None)

    def add_raw_file_item(self, item: dict[str, Any]) -> int:
        """A documents-queue file row served exactly as given (for validation tests); returns the row id."""
        with self._lock:
            return self._new_row("files", item=item)

    def add_raw_content_item(self, item: dict[str, Any]) -> int:
        """A content-provider row served exactly as given (for validation tests); returns the row id."""
        with self._lock:
            return self._new_row("content_providers", item=item)

    def add_content_item(
        self,
        user_ids: list[str],
        provider: str = "mail__mail",
        item_id: str = "42",
        title: str = "Re: budget",
        content: str = "full text of the item",
        mimetype: str = "text/plain",
        modified: int | None = None,
    ) -> int:
        """Enqueue a content-provider item; returns its content-queue row id (own id space)."""
        with self._lock:
            self.users.update(user_ids)
            item = {"userIds": list(user_ids), "reference": f"{provider}: {item_id}", "title": title,
                    "content": content, "modified": int(self.now()) if modified is None else modified,
                    "type": mimetype, "provider": provider, "size": len(content.encode())}  # fmt: skip
            return self._new_row("content_providers", item=item)

    def add_folder(self, folder_id: int, file_ids: list[int]) -> None:
        with self._lock:
            self.folders[folder_id] = list(file_ids)

    def add_action(self, type: str, payload: dict[str, Any]) -> int:
        return self.add_actions([(type, payload)])[0]

    def add_actions(self, actions: list[tuple[str, dict[str, Any]]]) -> list[int]:
        """Queue several actions at once (one poll serves all of them); returns their row ids."""
        with self._lock:
            return [
                self._new_row("actions", item={"id": self._ids["actions"] + 1, "type": type, "payload": payload})
                for type, payload in actions
            ]

    def schedule_task(self, task_type: str, user_id: str, input: dict[str, Any], app_id: str = "assistant") -> int:
        with self._lock:
            self._ids["task"] += 1
            task_id, now = self._ids["task"], int(self.now())
            self.tasks[task_id] = {"id": task_id, "type": task_type, "lastUpdated": now, "status": "STATUS_SCHEDULED",
                                   "userId": user_id, "appId": app_id, "input": input, "output": None,
                                   "customId": "", "completionExpectedAt": None, "progress": 0, "scheduledAt": now,
                                   "startedAt": None, "endedAt": None, "errorMessage": None}  # fmt: skip
            return task_id

    def text2text_tasks(self) -> list[int]:
        """Ids of the core:text2text tasks scheduled so far (nc_texttotext's LLM calls), oldest first."""
        with self._lock:
            return [task_id for task_id, task in self.tasks.items() if task["type"] == TEXT2TEXT]

    def finish_text2text(self, task_id: int, output: str) -> None:
        """The text-to-text provider answers: a core:text2text task runs until its test calls this (a slow LLM)."""
        with self._cond:
            now = int(self.now())
            self.tasks[task_id].update(status="STATUS_SUCCESSFUL", output={"output": output}, endedAt=now, progress=1)
            self._cond.notify_all()

    def cancel_task(self, task_id: int) -> None:
        """The user cancels the task in the Assistant: only a scheduled or running one becomes CANCELLED (Nextcloud 34
        lib/private/TaskProcessing/Manager.php:1187-1201)."""
        with self._cond:
            task = self.tasks[task_id]
            if task["status"] in ("STATUS_SCHEDULED", "STATUS_RUNNING"):
                now = int(self.now())
                task.update(status="STATUS_CANCELLED", endedAt=now, lastUpdated=now)
            self._cond.notify_all()

    def delete_task(self, task_id: int) -> None:
        """The user deletes the task in the Assistant: Nextcloud drops its row, later calls about it answer 404."""
        with self._cond:
            del self.tasks[task_id]
            self._cond.notify_all()

    def wait_task(self, task_id: int, timeout: float) -> dict[str, Any]:
        """Block until the task is SUCCESSFUL or FAILED (TimeoutError otherwise); returns a copy of it."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.tasks[task_id]["status"] in _DONE, timeout):
                raise TimeoutError(f"task {task_id} is still {self.tasks[task_id]['status']}")
            return dict(self.tasks[task_id])

    def paths(self, method: str | None = None) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests if method is None or r.method == method]

    def acked_documents(self) -> dict[str, list[int]]:
        """Every id acknowledged so far per kind ("files", "content_providers", "actions"), in order."""
        with self._lock:
            return {kind: list(ids) for kind, ids in self._acked.items()}

    def queue_rows(self) -> dict[str, list[int]]:
        """Row ids still queued (locked or not) per kind."""
        with self._lock:
            return {kind: sorted(rows) for kind, rows in self._rows.items()}

    def locked_rows(self) -> dict[str, list[int]]:
        """Row ids claimed less than 24 h ago (per `now`) per kind."""
        with self._lock:
            cutoff = self.now() - LOCK_TIMEOUT_S
            return {
                kind: sorted(i for i, r in rows.items() if r.locked_at is not None and r.locked_at > cutoff)
                for kind, rows in self._rows.items()
            }

    def _ocs(self, req: RecordedRequest, data: Any, status: int = 200, message: str = "") -> _Reply:
        v1 = req.path.startswith("/ocs/v1.php/")
        http = 200 if v1 and self.ocs_v1_errors_in_envelope and status != 401 else status
        return _Reply(http, ocs_envelope(data, 100 if v1 and status == 200 else status, message))

    def _bad(self, req: RecordedRequest, message: str) -> _Reply:
        return self._ocs(req, {"message": message}, 400, message)

    def _missing(self, req: RecordedRequest, lists: tuple[str, ...], others: tuple[str, ...] = ()) -> _Reply | None:
        """400 unless the JSON body has every key (`lists` must hold lists), as PHP rejects missing parameters."""
        body = req.json if isinstance(req.json, dict) else {}
        if all(isinstance(body.get(k), list) for k in lists) and all(k in body for k in others):
            return None
        return self._bad(req, f"missing parameter: {' and '.join(lists + others)}")

    def _route(self, method: str, path: str) -> tuple[str, Callable[..., _Reply], tuple[str, ...]] | None:
        table: list[tuple[str, str, str, Callable[..., _Reply]]] = [
            ("GET", f"{_CC}/queues/documents", "documents", self._documents),
            ("DELETE", f"{_CC}/queues/documents", "ack_documents", lambda r: self._ack(r, _DOC_KINDS)),
            ("GET", f"{_CC}/queues/actions", "actions", self._actions),
            ("DELETE", f"{_CC}/queues/actions", "ack_actions", lambda r: self._ack(r, ("actions",))),
            ("GET", rf"{_CC}/files/(\d+)", "files", self._file),
            ("POST", f"{_CC}/resolve_scope_list", "resolve", self._resolve),
            ("POST", f"{_CC}/enrich_sources", "enrich", self._enrich),
            ("POST", _AI, "register", self._register),
            ("DELETE", _AI, "unregister", self._unregister),
            ("GET", f"{_TP}/next", "next_task", self._next_task),
            ("POST", rf"{_TP}/(\d+)/result", "result", self._result),
            ("POST", rf"{_TP}/(\d+)/progress", "progress", self._progress),
            ("POST", f"{_T2T}/schedule", "text2text_schedule", self._schedule_text2text),
            ("GET", rf"{_T2T}/task/(\d+)", "text2text_task", self._text2text_task),
            ("POST", rf"{_T2T}/tasks/(\d+)/cancel", "text2text_cancel", self._cancel_text2text),
            ("GET", "/ocs/v1.php/cloud/capabilities", "capabilities", lambda r: self._ocs(r, _CAPABILITIES)),
            ("PUT", "/ocs/v1.php/apps/app_api/ex-app/status", "init_status", self._init_status),
            ("GET", "/ocs/v1.php/apps/app_api/ex-app/state", "state", lambda r: self._ocs(r, {"enabled": True})),
        ]
        for verb, pattern, name, handler in table:
            match = re.fullmatch(pattern, path.rstrip("/"))
            if match and verb == method:
                return name, handler, match.groups()
        return None

    def _dispatch(self, req: RecordedRequest, authed: bool) -> _Reply:
        with self._lock:
            self.requests.append(req)
        if self.on_request is not None:
            self.on_request(req)
        found = self._route(req.method, req.path)
        if (
            found is None
            or (found[0] in _CONTEXT_CHAT_ROUTES and not self.pull_supported)
            or (found[0] in _TEXT2TEXT_ROUTES and not self.text2text_provider)
        ):
            return self._ocs(req, [], 404, UNKNOWN_OCS_ROUTE)
        name, handler, args = found
        if self.delay_s.get(name):
            time.sleep(self.delay_s[name])
        if self.maintenance.is_set():
            with self._lock:
                self.maintenance_answers += 1
            return _Reply(503, ocs_envelope(None, 503, "Service unavailable"))
        with self._lock:
            faults = self.endpoint_faults.get(name)
            fault = faults.popleft() if faults else None
        if fault == 0:
            return _Reply(0, drop=True)
        if fault is not None:
            return _Reply(fault, ocs_envelope([], fault, "scripted fault"), self._retry_after(fault))
        if not authed:
            return _Reply(412, ocs_envelope({"message": "ExApp required"}, 412, "ExApp required"))
        reply = handler(req, *args)
        if self.on_answer is not None:
            self.on_answer(req, reply.status)
        return reply

    def _retry_after(self, status: int) -> dict[str, str]:
        with self._lock:
            seconds = self.fault_retry_after.get(status)
        return {} if seconds is None else {"Retry-After": seconds}

    def _auth(self, headers: dict[str, str]) -> tuple[str, bool]:
        try:
            decoded = base64.b64decode(headers.get("authorization-app-api", ""), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return "", False
        user, sep, secret = decoded.partition(":")
        app_ok = bool(headers.get("ex-app-id")) and bool(headers.get("ex-app-version"))
        return user, bool(sep) and secret == self.secret and app_ok

    def _claim(self, kind: str, n: int, build: Callable[[_Row], dict[str, Any] | None]) -> dict[str, Any]:
        """Claim up to n unlocked or expired rows in id order (caller holds the lock); build → None drops the row."""
        now, rows = self.now(), self._rows[kind]
        claimed: dict[str, Any] = {}
        for row_id in sorted(rows):
            row = rows[row_id]
            if len(claimed) >= n:
                break
            if row.locked_at is not None and row.locked_at > now - LOCK_TIMEOUT_S:
                continue
            item = build(row)
            if item is None:
                del rows[row_id]
                continue
            row.locked_at = now
            claimed[str(row_id)] = item
        return claimed

    def _file_item(self, row: _Row) -> dict[str, Any] | None:
        f = self.files.get(row.file_id) if row.item is None and row.file_id is not None else None
        if f is None:
            return row.item
        return {"userIds": list(f.user_ids), "reference": f"files__default: {row.file_id}", "title": f.title,
                "content": None, "modified": f.modified, "type": f.mimetype, "provider": "files__default",
                "size": len(f.content)}  # fmt: skip

    def _documents(self, req: RecordedRequest) -> _Reply:
        n_text = req.query.get("n", "64")
        n = int(n_text) if re.fullmatch(r"-?\d+", n_text) else 0
        if n <= 0:
            return self._bad(req, "Parameter n must be a positive integer")
        with self._lock:
            files = self._claim("files", min(n, 1024), self._file_item)
            content = self._claim("content_providers", min(n, 1024), lambda row: row.item)
        return self._ocs(req, {"files": files, "content_providers": content})

    def _ack(self, req: RecordedRequest, kinds: tuple[str, ...]) -> _Reply:
        if error := self._missing(req, kinds):
            return error
        body = req.json
        try:
            ids = {kind: [int(i) for i in body[kind]] for kind in kinds}
        except (TypeError, ValueError):
            return self._bad(req, "ids must be integers")
        with self._lock:
            for kind, values in ids.items():
                self._acked[kind].extend(values)
                for i in values:
                    self._rows[kind].pop(i, None)
        return self._ocs(req, [])

    def _actions(self, req: RecordedRequest) -> _Reply:
        if not re.fullmatch(r"-?\d+", n_text := req.query.get("n", "512")):
            return self._bad(req, "Parameter n must be an integer")
        with self._lock:
            actions = self._claim("actions", int(n_text), lambda row: row.item) if int(n_text) > 0 else {}
        return self._ocs(req, {"actions": actions})

    def _file(self, req: RecordedRequest, file_id: str) -> _Reply:
        fid = int(file_id)
        with self._lock:
            self.file_fetches[fid] += 1
            faults = self.file_faults.get(fid)
            fault = faults.popleft() if faults else None
            f = self.files.get(fid)
        if "userId" not in req.query:
            return self._bad(req, "missing parameter: userId")
        if fault is None and (f is None or req.query["userId"] not in f.user_ids):
            fault = 404
        if isinstance(fault, int):
            message = _FILE_ERRORS.get(fault, "Unknown error occurred.")
            reply = self._ocs(req, {"error": message}, fault, message)
            reply.headers.update(self._retry_after(fault))
            return reply
        assert f is not None
        data, headers = f.content, {"Content-Type": "application/octet-stream"}
        if self.gzip_responses and _accepts_gzip(req.headers.get("accept-encoding", "")):
            data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
        size = max(1, self.chunk_size)
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        if fault == "drop" and not data:
            return _Reply(0, drop=True)
        if fault == "drop":
            return _Reply(200, headers=headers, chunks=[data[: max(1, len(data) // 2)]], drop_after=1)
        return _Reply(
            200,
            headers=headers,
            chunks=chunks,
            chunk_delay=self.slow_files.get(fid, 0.0),
            hold=self.held_files.get(fid),
        )

    def _resolve(self, req: RecordedRequest) -> _Reply:
        if error := self._missing(req, ("source_ids",), ("userId",)):
            return error
        body = req.json
        out: list[str] = []
        with self._lock:
            if body["userId"] not in self.users:
                return self._ocs(req, [], 404)
            for sid in (s for s in body["source_ids"] if isinstance(s, str)):
                if not sid.startswith("files__default"):
                    out.append(sid)
                elif match := _FILE_SOURCE.match(sid):
                    folder = self.folders.get(int(match.group(1)))
                    out.extend([sid] if folder is None else [f"files__default: {i}" for i in folder])
        return self._ocs(req, {"source_ids": out})

    def _enrich(self, req: RecordedRequest) -> _Reply:
        if error := self._missing(req, ("sources",), ("userId",)):
            return error
        body = req.json
        providers: list[dict[str, str]] = []
        files: list[dict[str, str]] = []
        with self._lock:
            for source in (s for s in body["sources"] if isinstance(s, dict) and isinstance(s.get("source_id"), str)):
                sid, title = source["source_id"], str(source.get("title") or "")
                if match := _FILE_SOURCE.match(sid):
                    fid = int(match.group(1))
                    f = self.files.get(fid)
                    label = PurePosixPath(f.title).name if f and body["userId"] in f.user_ids else "Deleted file"
                    icon = f"{self.url}/core/img/filetypes/file.svg"
                    files.append({"id": sid, "label": label, "icon": icon, "url": f"{self.url}/index.php/f/{fid}"})
                    continue
                key, _, item_id = sid.partition(": ")
                app_id, sep, provider_id = key.partition("__")
                if sid.startswith("files__default") or not sep or not item_id:
                    continue  # unparsable or unknown provider: dropped silently
                label = f"{app_id[:1].upper()}{app_id[1:]} - {provider_id[:1].upper()}{provider_id[1:]}"
                url = f"{self.url}/apps/{app_id}/{item_id}"
                # MetadataService::getEnrichedSources: a provider item's entry carries its provider key as id
                providers.append(
                    {"id": key, "label": label + (title or f" #{item_id}"), "icon": f"/apps/{app_id}/img/app-dark.svg",
                     "url": url}
                )  # fmt: skip
        return self._ocs(req, {"sources": providers + files})

    def _register(self, req: RecordedRequest) -> _Reply:
        body = req.json if isinstance(req.json, dict) else {}
        provider, task_type = body.get("provider"), body.get("customTaskType")
        if not isinstance(provider, dict) or not isinstance(task_type, dict) or not provider.get("id"):
            return self._bad(req, "provider and customTaskType are required")
        if provider.get("task_type") != task_type.get("id"):
            return self._bad(req, "provider.task_type must equal customTaskType.id")
        runtime = provider.get("expected_runtime")
        if not isinstance(runtime, int) or isinstance(runtime, bool):
            return self._bad(req, "expected_runtime must be an integer")
        if not all(isinstance(v, dict) for k, v in provider.items() if k.endswith("_defaults")):
            return self._bad(req, "*_defaults must be objects")
        with self._lock:
            self.providers[str(provider["id"])] = {"provider": provider, "customTaskType": task_type}
        return self._ocs(req, [])

    def _unregister(self, req: RecordedRequest) -> _Reply:
        with self._lock:
            found = self.providers.pop(req.query.get("name", ""), None)
        return self._ocs(req, [], 404 if found is None else 200)

    def _next_task(self, req: RecordedRequest) -> _Reply:
        if error := self._missing(req, ("providerIds", "taskTypeIds")):
            return error
        body = req.json
        with self._lock:
            serving: dict[str, str] = {}  # task type -> the first registered provider asked for it
            for pid, reg in self.providers.items():
                if pid in body["providerIds"] and reg["provider"]["task_type"] in body["taskTypeIds"]:
                    serving.setdefault(reg["provider"]["task_type"], pid)
            ready = [t for t in self.tasks.values() if t["status"] == "STATUS_SCHEDULED" and t["type"] in serving]
            if not ready:
                return _Reply(204)
            task = min(ready, key=lambda t: int(t["id"]))
            now = int(self.now())
            task.update(status="STATUS_RUNNING", startedAt=now, lastUpdated=now)
            data = {"task": dict(task), "provider": {"name": serving[task["type"]]}}
        return self._ocs(req, data)

    def _result(self, req: RecordedRequest, task_id: str) -> _Reply:
        body = req.json if isinstance(req.json, dict) else {}
        with self._cond:
            task = self.tasks.get(int(task_id))
            if task is None:
                return self._ocs(req, [], 404, "task not found")
            if task["status"] == "STATUS_CANCELLED":
                # Nextcloud 34 keeps a cancelled task as it is and answers 200 with it (Manager.php:1229-1232,
                # TaskProcessingApiController.php:632-640)
                return self._ocs(req, {"task": dict(task)})
            output = body.get("output")
            if output is None:
                task.update(status="STATUS_FAILED", output=None, errorMessage=body.get("errorMessage"))
            else:
                types = [r["customTaskType"] for r in self.providers.values()]
                shape = next((t.get("output_shape", []) for t in types if t.get("id") == task["type"]), None)
                ok = shape is not None and isinstance(output, dict)
                ok = ok and all(s["name"] in output and _shape_value_ok(s.get("shape_type"), output[s["name"]])
                                for s in shape or [])  # fmt: skip
                failed = {"status": "STATUS_FAILED", "output": None, "errorMessage": "output shape mismatch"}
                task.update({"status": "STATUS_SUCCESSFUL", "output": output} if ok else failed)
            if "userFacingErrorMessage" in body:
                task["userFacingErrorMessage"] = body["userFacingErrorMessage"]
            now = int(self.now())
            task.update(endedAt=now, lastUpdated=now, progress=1)
            self._cond.notify_all()
            data = {"task": dict(task)}
        return self._ocs(req, data)

    def _progress(self, req: RecordedRequest, task_id: str) -> _Reply:
        """As Nextcloud 34 (core/Controller/TaskProcessingApiController.php:597-613, Manager::setTaskProgress
        lib/private/TaskProcessing/Manager.php:1204-1223): a deleted task answers 404; a cancelled one stays as it is
        and is answered 200 with its status; any other becomes RUNNING with the progress."""
        if error := self._missing(req, (), ("progress",)):
            return error
        progress = req.json["progress"]
        if not isinstance(progress, int | float):
            return self._bad(req, "progress must be a number")
        with self._lock:
            task = self.tasks.get(int(task_id))
            if task is None:
                return self._ocs(req, {"message": "Not found"}, 404, "Not found")
            if task["status"] != "STATUS_CANCELLED":
                now = int(self.now())
                if task["status"] == "STATUS_SCHEDULED":
                    task["startedAt"] = now
                task.update(status="STATUS_RUNNING", progress=progress, lastUpdated=now)
            data = {"task": dict(task)}
        return self._ocs(req, data)

    def _schedule_text2text(self, req: RecordedRequest) -> _Reply:
        body = req.json if isinstance(req.json, dict) else {}
        if body.get("type") != TEXT2TEXT or not isinstance(body.get("input"), dict):
            return self._bad(req, "only core:text2text tasks with an input are provided here")
        task_id = self.schedule_task(TEXT2TEXT, req.user, body["input"], str(body.get("appId", "")))
        with self._lock:
            self.tasks[task_id]["status"] = "STATUS_RUNNING"
            data = {"task": dict(self.tasks[task_id])}
        return self._ocs(req, data)

    def _text2text_task(self, req: RecordedRequest, task_id: str) -> _Reply:
        with self._lock:
            task = self.tasks.get(int(task_id))
            if task is None or task["type"] != TEXT2TEXT or task["userId"] != req.user:
                return self._ocs(req, [], 404, "task not found")
            data = {"task": dict(task)}
        return self._ocs(req, data)

    def _cancel_text2text(self, req: RecordedRequest, task_id: str) -> _Reply:
        with self._cond:
            task = self.tasks.get(int(task_id))
            if task is None or task["type"] != TEXT2TEXT or task["userId"] != req.user:
                return self._ocs(req, [], 404, "task not found")
            task.update(status="STATUS_CANCELLED", endedAt=int(self.now()))
            self._cond.notify_all()
            data = {"task": dict(task)}
        return self._ocs(req, data)

    def _init_status(self, req: RecordedRequest) -> _Reply:
        with self._lock:
            self.init_status.append(req.json)
        return self._ocs(req, [])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                split = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                user, authed = fake._auth(headers)
                query = dict(parse_qsl(split.query, keep_blank_values=True))
                reply = fake._dispatch(RecordedRequest(self.command, split.path, query, headers, body, user), authed)
                try:
                    self._send(reply)
                except OSError:  # the client went away
                    self.close_connection = True

            def _send(self, reply: _Reply) -> None:
                if reply.drop:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunks is None:  # PHP-style JSON answer with a length (none for 204)
                    if reply.status != 204:
                        self.send_header("Content-Type", "application/json; charset=utf-8")
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if reply.hold is not None and not reply.hold.wait(HOLD_LIMIT_S):
                    self.close_connection = True  # a test forgot to release it; never hang the suite
                    return
                for index, chunk in enumerate(reply.chunks):
                    if index and reply.chunk_delay:
                        time.sleep(reply.chunk_delay)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                    if reply.drop_after is not None and index + 1 >= reply.drop_after:
                        self.close_connection = True
                        return
                self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return None

        return Handler
