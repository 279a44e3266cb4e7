"""Request ids as a pure ASGI middleware: every log line of a request carries its id, the response echoes it, and one
line per request says how it ended.

AppAPI sends `AA-REQUEST-ID` with every call: Nextcloud's request id of the web request or cron job behind it, or the
literal 'CLI' for occ commands (nextcloud/app_api, AppAPIService). We keep Nextcloud's id, so a line here can be
matched with nextcloud.log; 'CLI' (shared by every occ call) gets a unique suffix; anything absent or malformed is
replaced by a fresh id.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

import httpx

from appliance.json_logging import request_id
from quart_app.asgi_body import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

HEADER = b"aa-request-id"
CLI_REQUEST_ID = "CLI"
# Nextcloud's ids are 20 letters and digits; allow the usual id characters, never a control character or a space
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# polled every few seconds (AppAPI and the health check; `ccb status --watch`, `ccb index` and the status page): a line
# for each answer would drown everything else, so only a failed one is logged
QUIET_PATHS = frozenset({"/heartbeat", "/status", "/status/history"})
# Nextcloud's routes are short; a path is logged up to this long, so an 8 KB probe path cannot flood the logs
LOGGED_PATH_CHARS = 1024


def logged_path(scope: Scope) -> str:
    """The request's path for a log line, cut after LOGGED_PATH_CHARS characters with a marker that says so."""
    path = str(scope.get("path", ""))
    if len(path) <= LOGGED_PATH_CHARS:
        return path
    return f"{path[:LOGGED_PATH_CHARS]}…[cut: {len(path)} characters]"


def choose_request_id(sent: str | None) -> str:
    """The id for a request: AppAPI's when it is a usable id, 'CLI-<random>' for occ calls, else a fresh one."""
    if sent == CLI_REQUEST_ID:
        return f"{CLI_REQUEST_ID}-{secrets.token_hex(6)}"
    if sent is not None and _VALID_ID.fullmatch(sent):
        return sent
    return secrets.token_hex(10)


def _sent_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == HEADER:
            return str(value.decode("latin-1"))
    return None


async def forward_request_id(outgoing: httpx.Request) -> None:
    """httpx request hook: a call made while handling a request carries its id (the embedder logs under it)."""
    current = request_id.get()
    if current is not None:
        outgoing.headers["AA-REQUEST-ID"] = current


class RequestIdMiddleware:
    """Wraps the app's ASGI callable (outermost: a request refused by auth has an id and a line too).

    `access_log`: one line per request; the embedder, called for every batch of chunks, goes without.
    """

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self._app = app
        self._access_log = access_log

    def __repr__(self) -> str:
        return f"RequestIdMiddleware(access_log={self._access_log})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        current = choose_request_id(_sent_id(scope))
        token = request_id.set(current)
        started = time.monotonic()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), (HEADER, current.encode())]}
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            answered = status is not None and status < 400
            if self._access_log and not (answered and scope.get("path") in QUIET_PATHS):
                path = logged_path(scope)
                log.log(
                    logging.WARNING if status is None or status >= 500 else logging.INFO,
                    "%s %s %s",
                    scope.get("method"),
                    path,
                    status if status is not None else "no response",
                    extra={
                        "method": scope.get("method"),
                        "path": path,
                        "status": status,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    },
                )
            request_id.reset(token)
