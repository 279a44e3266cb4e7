"""The fake Nextcloud's state, its HTTP server and the answers every route shares (OCS envelope, 400 for a missing
parameter, AppAPI's signature); the routes are in pull_fake_queues.py and pull_fake_tasks.py."""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from dav_file_search import DavFileSearch
from local_http_server import LocalHttpFake, LocalHttpServer
from pull_fake_wire import HOLD_LIMIT_S, RecordedRequest, _File, _Reply, _Row, ocs_envelope

from appliance.app_client import signed_headers


class FakeNextcloudBase(LocalHttpFake, ABC):
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
        # per route: its answer sent a few bytes at a time, this long between them (each read well within a timeout)
        self.trickle_s: dict[str, float] = {}
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
        # which files a user still reads, as WebDAV SEARCH answers it (the push routes' check before an answer)
        self.dav = DavFileSearch()
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

    def paths(self, method: str | None = None) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests if method is None or r.method == method]

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

    @abstractmethod
    def _dispatch(self, req: RecordedRequest, authed: bool) -> _Reply:
        """Route a request and answer it (FakePullNextcloud)."""

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
                if reply.chunks is None:  # PHP-style JSON (WebDAV: XML) answer with a length (none for 204)
                    if reply.status != 204:
                        xml = self.command == "SEARCH"
                        self.send_header("Content-Type", f"application/{'xml' if xml else 'json'}; charset=utf-8")
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

            do_GET = do_POST = do_PUT = do_DELETE = do_SEARCH = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return None

        return Handler
