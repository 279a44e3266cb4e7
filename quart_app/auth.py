"""AppAPI request signing as a pure ASGI middleware: EX-APP-ID, EX-APP-VERSION and AUTHORIZATION-APP-API."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Iterable

from quart_app.asgi_body import ASGIApp, BodyStream, Receive, Scope, Send

log = logging.getLogger(__name__)

INVALID_SIGNATURE = "Invalid signature of the request"
USER_SCOPE_KEY = "username"
EXEMPT_PATHS = frozenset({"/heartbeat"})
# nc_py_api requires these non-empty; the version is not compared (AppAPI may run any installed version)
REQUIRED_HEADERS = ("ex-app-id", "ex-app-version", "authorization-app-api")


class SignatureError(Exception):
    """A request is not signed by AppAPI with our APP_ID and APP_SECRET; the reason never holds a credential."""


def decode_authorization(value: str) -> tuple[str, str]:
    """(user id, secret) from base64("user:secret"); the user id may be empty."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SignatureError("AUTHORIZATION-APP-API is not base64 of 'user:secret'") from None
    user, sep, secret = decoded.partition(":")
    if not sep:
        raise SignatureError("AUTHORIZATION-APP-API has no ':' between user and secret")
    return user, secret


def verify_headers(headers: dict[str, str], app_id: str, app_secret: str) -> str:
    """The signed user id, or SignatureError naming what is wrong (never the values)."""
    missing = [name.upper() for name in REQUIRED_HEADERS if not headers.get(name)]
    if missing:
        raise SignatureError(f"missing required headers: {', '.join(missing)}")
    if headers["ex-app-id"] != app_id:
        raise SignatureError("EX-APP-ID does not match APP_ID")
    user, secret = decode_authorization(headers["authorization-app-api"])
    if not app_secret or not hmac.compare_digest(secret.encode("utf-8"), app_secret.encode("utf-8")):
        raise SignatureError("the app secret does not match APP_SECRET")
    return user


def _scope_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}


class AppApiAuthMiddleware:
    """Wraps the app's ASGI callable; puts the signed user id into scope['username'], else answers 401."""

    def __init__(self, app: ASGIApp, app_id: str, app_secret: str, exempt: frozenset[str] = EXEMPT_PATHS) -> None:
        self._app = app
        self._app_id = app_id
        self._app_secret = app_secret
        self._exempt = exempt

    def __repr__(self) -> str:
        return f"AppApiAuthMiddleware(app_id={self._app_id!r}, exempt={sorted(self._exempt)})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        if scope.get("path") in self._exempt:
            scope[USER_SCOPE_KEY] = ""
            await self._app(scope, receive, send)
            return
        try:
            user = verify_headers(_scope_headers(scope.get("headers", [])), self._app_id, self._app_secret)
        except SignatureError as exc:
            log.warning("refused %s %s: %s", scope.get("method", "WS"), scope.get("path"), exc)
            if scope["type"] == "http":
                # answering while the body still arrives would close the keep-alive connection under the next request
                await BodyStream(receive).drain()
            await _send_401(scope, send)
            return
        scope[USER_SCOPE_KEY] = user
        await self._app(scope, receive, send)


async def _send_401(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"error": INVALID_SIGNATURE}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def passthrough_user(app: ASGIApp) -> ASGIApp:
    """With disable_aaa: no signature check, every request is the anonymous user (dev only)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope.setdefault(USER_SCOPE_KEY, "")
        await app(scope, receive, send)

    return wrapped
