"""A small Nextcloud stand-in over real sockets: the OCS endpoints the backend calls, in the OCS envelope.

Reusable: start `FakeNextcloud()` as a context manager, script its answers through the public attributes, read
`requests` afterwards. Endpoints: capabilities (nc_py_api's set_user reads it), TaskProcessing schedule and task,
WebDAV SEARCH by file id and PROPFIND of a user's root (`dav`, tests/dav_file_search.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from dav_file_search import HOME_PREFIX, SEARCH_PATH, DavFileSearch
from local_http_server import LocalHttpFake, LocalHttpServer

# the id of the first task scheduled; the next ones count up from it
FIRST_TASK_ID = 41


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any
    # time.monotonic() when it arrived
    at: float = field(default_factory=time.monotonic)


@dataclass
class TaskScript:
    """How a scheduled task evolves: the statuses returned by successive polls (the last one repeats)."""

    statuses: list[str] = field(default_factory=lambda: ["STATUS_SUCCESSFUL"])
    output: str = "generated answer"
    error_message: str | None = None
    # HTTP codes answered to polls before the status sequence starts (transient errors)
    poll_errors: list[int] = field(default_factory=list)
    # hold points: the n-th task scheduled is polled as running until releases[n] is set (later ones are not held)
    releases: list[threading.Event] = field(default_factory=list)


def ocs_envelope(data: Any, status: int = 200, message: str = "OK") -> bytes:
    ok = 200 <= status < 300 or status == 100
    meta = {"status": "ok" if ok else "failure", "statuscode": status, "message": message}
    return json.dumps({"ocs": {"meta": meta, "data": data}}).encode()


class FakeNextcloud(LocalHttpFake):
    """Threaded HTTP server on 127.0.0.1; `url` is its base URL."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        # HTTP codes answered to successive schedule calls before one succeeds (e.g. [429, 429])
        self.schedule_errors: deque[int] = deque()
        # answer 412 in the OCS envelope with HTTP 200, as OCS v1 can do
        self.schedule_error_in_envelope = False
        # the Retry-After header sent with those errors (Nextcloud's rate limiter sends one with its 429)
        self.schedule_retry_after: str | None = None
        self.task = TaskScript()
        # ids of the tasks a cancel request was sent for
        self.cancelled: list[int] = []
        # the id of each task as it is scheduled: a test waits on it to act while the task is held
        self.scheduled: queue.Queue[int] = queue.Queue()
        # which files a user still reads, as WebDAV SEARCH answers it (push mode's check before an answer)
        self.dav = DavFileSearch()
        self._polls: dict[int, int] = {}
        self._next_id = FIRST_TASK_ID
        self._lock = threading.Lock()
        self._http = LocalHttpServer(self._handler_class())

    @property
    def url(self) -> str:
        base_url: str = self._http.base_url
        return base_url

    def env(self, app_id: str = "context_chat_backend") -> dict[str, str]:
        """The variables AppAPI gives an ExApp, pointing at this server."""
        return {"NEXTCLOUD_URL": self.url, "APP_ID": app_id, "APP_SECRET": "test-secret", "APP_VERSION": "4.0.0"}

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]

    def _answer_headers(self, method: str, path: str, code: int) -> dict[str, str]:
        """Headers beyond the type and length: Retry-After on a scripted schedule error, when one is set."""
        scripted_error = method == "POST" and path == "/ocs/v1.php/taskprocessing/schedule" and code != 200
        if scripted_error and self.schedule_retry_after is not None:
            return {"Retry-After": self.schedule_retry_after}
        return {}

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        with self._lock:
            if path.startswith("/ocs/v1.php/cloud/capabilities"):
                version = {"major": 31, "minor": 0, "micro": 0, "string": "31.0.0", "extendedSupport": False}
                return 200, ocs_envelope({"version": version, "capabilities": {}})
            if method == "POST" and path == "/ocs/v1.php/taskprocessing/schedule":
                if self.schedule_errors:
                    code = self.schedule_errors.popleft()
                    if self.schedule_error_in_envelope:
                        return 200, ocs_envelope([], code, "scripted error")
                    return code, ocs_envelope([], code, "scripted error")
                task_id = self._next_id
                self._next_id += 1
                self._polls[task_id] = 0
                self.scheduled.put(task_id)
                return 200, ocs_envelope({"task": {"id": task_id, "status": "STATUS_SCHEDULED", "output": None}})
            if method == "GET" and path.startswith("/ocs/v1.php/taskprocessing/task/"):
                task_id = int(path.rsplit("/", 1)[1])
                if task_id not in self._polls:
                    return 404, ocs_envelope([], 404, "task not found")
                order = task_id - FIRST_TASK_ID
                if order < len(self.task.releases) and not self.task.releases[order].is_set():
                    return 200, ocs_envelope({"task": {"id": task_id, "status": "STATUS_RUNNING", "output": None}})
                poll = self._polls[task_id]
                self._polls[task_id] = poll + 1
                if poll < len(self.task.poll_errors):
                    code = self.task.poll_errors[poll]
                    return code, ocs_envelope([], code, "scripted poll error")
                index = min(poll - len(self.task.poll_errors), len(self.task.statuses) - 1)
                status = self.task.statuses[index]
                task: dict[str, Any] = {"id": task_id, "status": status, "output": None}
                if status == "STATUS_SUCCESSFUL":
                    task["output"] = {"output": self.task.output}
                if self.task.error_message is not None:
                    task["errorMessage"] = self.task.error_message
                return 200, ocs_envelope({"task": task})
            if method == "POST" and path.startswith("/ocs/v1.php/taskprocessing/tasks/") and path.endswith("/cancel"):
                task_id = int(path.split("/")[-2])
                self.cancelled.append(task_id)
                return 200, ocs_envelope({"task": {"id": task_id, "status": "STATUS_CANCELLED", "output": None}})
            return 404, ocs_envelope([], 404, f"no route {method} {path}")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                dav = self.command in ("SEARCH", "PROPFIND")
                body = raw if dav else json.loads(raw) if raw else None
                path = self.path.split("?", 1)[0]
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append(RecordedRequest(self.command, path, headers, body))
                if dav and path.rstrip("/") == SEARCH_PATH:
                    code, payload = fake.dav.answer(_signed_user(headers), raw)
                elif self.command == "PROPFIND" and path.startswith(HOME_PREFIX):
                    code, payload = fake.dav.propfind(_signed_user(headers), path)
                else:
                    code, payload = fake._answer(self.command, path, body)
                self.send_response(code)
                for name, value in fake._answer_headers(self.command, path, code).items():
                    self.send_header(name, value)
                content_type = "application/xml; charset=utf-8" if dav else "application/json; charset=utf-8"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve
            do_SEARCH = _serve
            do_PROPFIND = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return None

        return Handler


def _signed_user(headers: dict[str, str]) -> str:
    """The user AppAPI's AUTHORIZATION-APP-API header names ("" when it is missing or malformed)."""
    try:
        decoded = base64.b64decode(headers.get("authorization-app-api", ""), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0]
