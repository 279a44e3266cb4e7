"""AppAPI request signing as a pure ASGI middleware: EX-APP-ID, EX-APP-VERSION and AUTHORIZATION-APP-API."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable

from quart_app.asgi_body import ASGIApp, BodyStream, Message, Receive, Scope, Send
from quart_app.request_ids import logged_path

log = logging.getLogger(__name__)

INVALID_SIGNATURE = "Invalid signature of the request"
USER_SCOPE_KEY = "username"
EXEMPT_PATHS = frozenset({"/heartbeat"})
# on paths that also take the app secret as an HTTP Basic password, a 401 makes the browser ask for it
BASIC_CHALLENGE = 'Basic realm="Context Chat Backend status", charset="UTF-8"'
# after the password, a signed cookie: a browser does not always send Basic credentials with a page's own requests
SESSION_COOKIE = "ccb_status_session"
SESSION_S = 8 * 3600
SESSION_COOKIE_PATH = "/status"
# a session cookie's expiry is a Unix time in seconds: 11 digits last until the year 5138
EXPIRES_DIGITS = 11
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


def verify_basic_secret(authorization: str, app_secret: str) -> None:
    """Accept `Authorization: Basic base64(any-user:APP_SECRET)`, else SignatureError (never naming the values)."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise SignatureError("Authorization is not HTTP Basic")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SignatureError("Authorization: Basic is not base64 of 'user:password'") from None
    _user, _, password = decoded.partition(":")
    if not app_secret or not hmac.compare_digest(password.encode("utf-8"), app_secret.encode("utf-8")):
        raise SignatureError("the Basic password does not match APP_SECRET")


def _session_mac(app_secret: str, expires: int) -> str:
    return hmac.new(app_secret.encode("utf-8"), f"status-page:{expires}".encode(), hashlib.sha256).hexdigest()


def session_cookie(app_secret: str, now: float) -> str:
    """A Set-Cookie value for the status page's paths, valid SESSION_S seconds, signed with the app secret."""
    expires = int(now) + SESSION_S
    value = f"{expires}.{_session_mac(app_secret, expires)}"
    return f"{SESSION_COOKIE}={value}; Path={SESSION_COOKIE_PATH}; Max-Age={SESSION_S}; HttpOnly; SameSite=Strict"


def verify_session_cookie(cookie_header: str, app_secret: str, now: float) -> None:
    """Accept an unexpired session cookie signed with APP_SECRET, else SignatureError."""
    cookies = dict(part.strip().partition("=")[::2] for part in cookie_header.split(";"))
    expires, _, mac = cookies.get(SESSION_COOKIE, "").partition(".")
    # ASCII digits of a plausible length: isdigit() takes '²', which int() refuses, and int() refuses 4,300+ digits
    if not (expires.isascii() and expires.isdigit() and len(expires) <= EXPIRES_DIGITS) or int(expires) < now:
        raise SignatureError(f"no AppAPI headers, no Basic password and no {SESSION_COOKIE} cookie")
    if not app_secret or not hmac.compare_digest(mac.encode(), _session_mac(app_secret, int(expires)).encode()):
        raise SignatureError(f"the {SESSION_COOKIE} cookie is not signed with APP_SECRET")


def _scope_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}


class AppApiAuthMiddleware:
    """Wraps the app's ASGI callable; puts the signed user id into scope['username'], else answers 401.

    GET requests to `secret_paths` (the admin status page) may instead carry the app secret as an HTTP Basic password
    (answered with a session cookie for the page's own requests): a browser without Nextcloud cannot sign requests,
    and whoever holds the secret may sign anything anyway.
    """

    def __init__(
        self,
        app: ASGIApp,
        app_id: str,
        app_secret: str,
        exempt: frozenset[str] = EXEMPT_PATHS,
        secret_paths: frozenset[str] = frozenset(),
    ) -> None:
        self._app = app
        self._app_id = app_id
        self._app_secret = app_secret
        self._exempt = exempt
        self._secret_paths = secret_paths

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
        path, method = scope.get("path"), scope.get("method")
        secret_path = scope["type"] == "http" and method == "GET" and path in self._secret_paths
        headers = _scope_headers(scope.get("headers", []))
        try:
            if secret_path and "authorization-app-api" not in headers:
                user, send = "", self._browser_login(headers, send)
            else:
                user = verify_headers(headers, self._app_id, self._app_secret)
        except SignatureError as exc:
            log.warning("refused %s %s: %s", scope.get("method", "WS"), logged_path(scope), exc)
            if scope["type"] == "http":
                # answering while the body still arrives would close the keep-alive connection under the next request
                await BodyStream(receive).drain()
            await _send_401(scope, send, challenge=secret_path)
            return
        scope[USER_SCOPE_KEY] = user
        await self._app(scope, receive, send)

    def _browser_login(self, headers: dict[str, str], send: Send) -> Send:
        """`send` once the app secret came as a Basic password (the answer then sets the session cookie) or a session
        cookie came; SignatureError otherwise. The user id stays "" (not a Nextcloud user)."""
        if "authorization" not in headers:
            verify_session_cookie(headers.get("cookie", ""), self._app_secret, time.time())
            return send
        verify_basic_secret(headers["authorization"], self._app_secret)
        cookie = (b"set-cookie", session_cookie(self._app_secret, time.time()).encode())

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), cookie]}
            await send(message)

        return send_with_cookie


async def _send_401(scope: Scope, send: Send, challenge: bool = False) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"error": INVALID_SIGNATURE}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if challenge:
        headers.append((b"www-authenticate", BASIC_CHALLENGE.encode()))
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def passthrough_user(app: ASGIApp) -> ASGIApp:
    """With disable_aaa: no signature check, every request is the anonymous user (dev only)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope.setdefault(USER_SCOPE_KEY, "")
        await app(scope, receive, send)

    return wrapped
