"""Who may open the status page: AppAPI-signed requests (an admin through the proxy) and whoever holds the app secret
(HTTP Basic password, then the session cookie it answers); nobody else, and the secret opens nothing but the page."""

from __future__ import annotations

import base64
import time
from collections.abc import MutableMapping
from typing import Any

import pytest
from contract_kit import APP_SECRET, signed_headers
from quart import Quart

from quart_app.auth import INVALID_SIGNATURE, SESSION_S, AppApiAuthMiddleware, session_cookie
from quart_app.routes.status_page import PAGE_PATHS


def _basic(password: str, user: str = "admin") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _cookie(set_cookie: str) -> dict[str, str]:
    return {"Cookie": set_cookie.split(";")[0]}


async def test_without_the_secret_the_page_and_its_json_answer_401(app: Quart) -> None:
    client = app.test_client(use_cookies=False)
    forged = session_cookie("another-secret", time.time())
    expired = session_cookie(APP_SECRET, time.time() - 2 * SESSION_S)
    wrong_signature = signed_headers("admin", secret="wrong")
    refusals = [{}, _basic("wrong-password"), wrong_signature, _cookie(forged), _cookie(expired)]
    for path in sorted(PAGE_PATHS):
        for headers in refusals:
            response = await client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert await response.get_json() == {"error": INVALID_SIGNATURE}
            # a browser asks for the password
            assert response.headers["WWW-Authenticate"].startswith('Basic realm="Context Chat Backend status"')
            assert "Set-Cookie" not in response.headers


async def test_the_secret_or_appapis_signature_opens_the_page_and_nothing_else(app: Quart) -> None:
    client = app.test_client(use_cookies=False)
    page = await client.get("/status/page.html", headers=_basic(APP_SECRET))
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/status;" in cookie
    assert APP_SECRET not in cookie
    for path in sorted(PAGE_PATHS):
        for headers in (_basic(APP_SECRET), _cookie(cookie), signed_headers("admin")):
            response = await client.get(path, headers=headers)
            assert response.status_code == 200, (path, headers)
    history = await (await client.get("/status/history", headers=_cookie(cookie))).get_json()
    assert set(history) == {"interval_s", "samples_max", "at", "chunks_per_s", "queue_depth"}
    # the secret as a password is for the page only: every other route still needs AppAPI's signature
    for headers in (_basic(APP_SECRET), _cookie(cookie)):
        assert (await client.get("/", headers=headers)).status_code == 401
        assert (await client.get("/downloadLogs", headers=headers)).status_code == 401
        assert (await client.post("/countIndexedDocuments", headers=headers)).status_code == 401
        unsigned = await client.get("/enabled", headers=headers)
        assert unsigned.status_code == 401 and "WWW-Authenticate" not in unsigned.headers


# raw header bytes, as a browser or a probe sends them: str.isdigit() takes '²' (0xb2 in latin-1) and int() refuses it;
# 5,000 digits pass isdigit() and exceed int()'s 4,300-digit limit
@pytest.mark.parametrize("expires", [b"\xb2", b"9" * 5000], ids=["superscript-digit", "past-int-conversion-limit"])
async def test_a_malformed_session_cookie_is_refused_with_401(expires: bytes) -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def never_called(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a refused request reached the app")

    middleware = AppApiAuthMiddleware(never_called, "context_chat_backend", APP_SECRET, secret_paths=PAGE_PATHS)
    cookie = b"ccb_status_session=" + expires + b".0123abcd"
    await middleware(
        {"type": "http", "method": "GET", "path": "/status", "headers": [(b"cookie", cookie)]}, receive, send
    )
    assert sent[0]["status"] == 401
    assert sent[1]["body"] == b'{"error": "' + INVALID_SIGNATURE.encode() + b'"}'
