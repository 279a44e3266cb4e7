"""The retrieval helper's fake Nextcloud (tests/retrieval/fake_nextcloud.py) plus AppAPI's init-status endpoint."""

from __future__ import annotations

import importlib.util
import sys
from collections import deque
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

_SOURCE = Path(__file__).resolve().parents[1] / "retrieval" / "fake_nextcloud.py"
# loaded by path under its own name: a plain `import fake_nextcloud` depends on which test dir pytest put first
_spec = importlib.util.spec_from_file_location("retrieval_fake_nextcloud", _SOURCE)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("retrieval_fake_nextcloud", _module)
_spec.loader.exec_module(_module)

FakeNextcloud: Any = _module.FakeNextcloud
ocs_envelope: Any = _module.ocs_envelope

INIT_STATUS_PATH = "/ocs/v1.php/apps/app_api/ex-app/status"


class FakeAppApiNextcloud(FakeNextcloud):  # type: ignore[misc]
    """Adds PUT /ocs/v1.php/apps/app_api/ex-app/status (what nc_py_api's set_init_status calls)."""

    def __init__(self) -> None:
        super().__init__()
        # HTTP codes answered to successive init-status reports before they are taken (Nextcloud restarting: [503])
        self.status_errors: deque[int] = deque()
        # the reports answered 200, in order
        self.taken_statuses: list[dict[str, Any]] = []

    def init_statuses(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.method == "PUT" and r.path == INIT_STATUS_PATH]

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        if method == "PUT" and path == INIT_STATUS_PATH:
            if self.status_errors:
                code = self.status_errors.popleft()
                return code, ocs_envelope([], code, "scripted error")
            self.taken_statuses.append(body)
            return 200, ocs_envelope([])
        result: tuple[int, bytes] = super()._answer(method, path, body)
        return result

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        base: type[BaseHTTPRequestHandler] = super()._handler_class()

        class Handler(base):  # type: ignore[valid-type,misc]
            do_PUT = base.do_POST  # type: ignore[attr-defined]

        return Handler
