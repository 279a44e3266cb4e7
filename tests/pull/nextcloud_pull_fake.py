"""A Nextcloud stand-in over real sockets for pull mode: context_chat 5.4 queues/files/util, TaskProcessing, AppAPI.

With `text2text_provider` set it offers core:text2text (nc_texttotext's LLM), answering only when the test calls
`finish_text2text`: a slow LLM.

Start `FakePullNextcloud()` as a context manager, fill it through `add_*`/`schedule_task`, script faults through the
public attributes, read `requests` and the helpers afterwards (spec: shared/reference/pull-contract.md §2).
OCS v2 answers carry the status as HTTP status; OCS v1 (AppAPI, capabilities) answers errors inside the envelope with
HTTP 200 like Nextcloud's V1Response (`ocs_v1_errors_in_envelope = False` → real HTTP codes).
Per request: record → `on_request` → route (404) → `delay_s` → `maintenance` (503) → `endpoint_faults` (0 = drop the
connection) → auth (412) → handler → `on_answer` (before the answer is sent) → `trickle_s` (the answer sent a few
bytes at a time).

The server is split by concern: pull_fake_wire.py (paths, answers), pull_fake_base.py (state, HTTP server),
pull_fake_queues.py (context_chat queues, files, util), pull_fake_tasks.py (TaskProcessing); the routing is here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from dav_file_search import SEARCH_PATH
from pull_fake_queues import QueueRoutes
from pull_fake_tasks import TaskRoutes
from pull_fake_wire import (
    _AI,
    _CAPABILITIES,
    _CC,
    _CONTEXT_CHAT_ROUTES,
    _DOC_KINDS,
    _T2T,
    _TEXT2TEXT_ROUTES,
    _TP,
    HOLD_LIMIT_S,
    LOCK_TIMEOUT_S,
    UNKNOWN_OCS_ROUTE,
    RecordedRequest,
    _Reply,
    ocs_envelope,
)

# bytes of an answer sent at a time by a route in `trickle_s`
TRICKLE_BYTES = 16

# what the tests import from here
__all__ = [
    "HOLD_LIMIT_S",
    "LOCK_TIMEOUT_S",
    "UNKNOWN_OCS_ROUTE",
    "FakePullNextcloud",
    "RecordedRequest",
    "ocs_envelope",
]


class FakePullNextcloud(QueueRoutes, TaskRoutes):
    """Threaded HTTP/1.1 server on 127.0.0.1; `url` is its base URL. State is guarded by one lock."""

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
            ("SEARCH", SEARCH_PATH, "dav_search", self._dav_search),
        ]
        for verb, pattern, name, handler in table:
            match = re.fullmatch(pattern, path.rstrip("/"))
            if match and verb == method:
                return name, handler, match.groups()
        return None

    def _dav_search(self, req: RecordedRequest) -> _Reply:
        status, body = self.dav.answer(req.user, str(req.json or "").encode())
        return _Reply(status, body)

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
        if (trickle := self.trickle_s.get(name)) and reply.chunks is None:
            chunks = [reply.body[i : i + TRICKLE_BYTES] for i in range(0, len(reply.body), TRICKLE_BYTES)]
            return _Reply(reply.status, headers=reply.headers, chunks=chunks, chunk_delay=trickle)
        return reply
