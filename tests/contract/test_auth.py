"""AppAPI signing: who gets in, the exact 401, /heartbeat exempt, user id to handlers, nothing secret in the logs."""

from __future__ import annotations

import base64
import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from contract_kit import APP_SECRET, contract_config, make_settings, signed_headers

from quart_app import create_app
from quart_app.auth import AppApiAuthMiddleware

REFUSED = {"error": "Invalid signature of the request"}
NO_DB = "postgresql://nobody@127.0.0.1:9/none"  # never opened: these tests do not run the lifespan


def _app(tmp_path: Path, **config: object):  # type: ignore[no-untyped-def]
    return create_app(make_settings(tmp_path, NO_DB, contract_config("http://127.0.0.1:9/v1", **config)))


async def test_signed_request_reaches_the_handler_with_its_user(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    response = await client.get("/", headers=signed_headers("alice"))
    assert response.status_code == 200
    assert await response.get_json() == "Hello, alice!"
    response = await client.get("/", headers=signed_headers(""))
    assert await response.get_json() == "Hello, anon!"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        signed_headers("alice", secret="wrong-secret"),
        signed_headers("alice", app_id="other_app"),
        {k: v for k, v in signed_headers("alice").items() if k != "EX-APP-VERSION"},
        {k: v for k, v in signed_headers("alice").items() if k != "EX-APP-ID"},
        {**signed_headers("alice"), "AUTHORIZATION-APP-API": "%%%not-base64%%%"},
        {**signed_headers("alice"), "AUTHORIZATION-APP-API": base64.b64encode(b"no-colon").decode()},
        {**signed_headers("alice"), "AUTHORIZATION-APP-API": ""},
    ],
    ids=["unsigned", "wrong-secret", "wrong-app-id", "no-version", "no-app-id", "not-base64", "no-colon", "empty"],
)
async def test_bad_signatures_get_401_with_upstreams_body(tmp_path: Path, headers: dict[str, str]) -> None:
    client = _app(tmp_path).test_client()
    for method, path in (("GET", "/"), ("GET", "/enabled"), ("POST", "/query"), ("PUT", "/loadSources")):
        response = await client.open(path, method=method, headers=headers)
        assert response.status_code == 401, path
        assert await response.get_json() == REFUSED


async def test_version_headers_are_required_but_not_compared(tmp_path: Path) -> None:
    # nc_py_api's sign_check: EX-APP-VERSION must be non-empty, any value passes; AA-VERSION is not checked
    client = _app(tmp_path).test_client()
    response = await client.get("/", headers=signed_headers("bob", version="9.9.9", aa_version=None))
    assert await response.get_json() == "Hello, bob!"


async def test_heartbeat_needs_no_signature(tmp_path: Path) -> None:
    response = await _app(tmp_path).test_client().get("/heartbeat")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok"}


async def test_the_secret_never_reaches_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = _app(tmp_path).test_client()
    wrong = "wrong-secret-value-xyz"
    await client.get("/", headers=signed_headers("alice", secret=wrong))
    await client.get("/", headers=signed_headers("alice"))
    await client.get("/", headers={**signed_headers("alice"), "AUTHORIZATION-APP-API": "garbage"})
    assert "refused GET /" in caplog.text
    for secret in (APP_SECRET, wrong, base64.b64encode(f"alice:{APP_SECRET}".encode()).decode()):
        assert secret not in caplog.text


async def test_disable_aaa_opens_everything_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    client = _app(tmp_path, disable_aaa=True).test_client()
    assert "disable_aaa is true" in caplog.text
    response = await client.get("/")
    assert await response.get_json() == "Hello, anon!"
    # the enabled guard is off too: the request gets past it (and fails later for want of an engine)
    response = await client.post("/query", json={"userId": "a", "query": "q"})
    assert await response.get_json() != {"error": "Context Chat is disabled, enable it from AppAPI to use it."}


@pytest.mark.parametrize(("pieces", "read"), [(3, 3), (40, 17)])
async def test_a_refused_request_body_is_read_before_the_401(pieces: int, read: int) -> None:
    """The 401 waits for the (small) body: answered mid-body, the server drops the keep-alive connection and the
    client's next request on it fails; a body over the drain limit is not read to its end."""
    events: list[str] = []
    chunk = b"x" * 65536  # 17 pieces pass the 1 MiB drain limit

    async def receive() -> dict[str, Any]:
        events.append("body")
        return {"type": "http.request", "body": chunk, "more_body": events.count("body") < pieces}

    async def send(message: MutableMapping[str, Any]) -> None:
        events.append(message["type"])

    async def never_called(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a refused request reached the app")

    middleware = AppApiAuthMiddleware(never_called, "context_chat_backend", APP_SECRET)
    scope = {"type": "http", "method": "POST", "path": "/query", "headers": [(b"ex-app-id", b"other_app")]}
    await middleware(scope, receive, send)
    assert events == ["body"] * read + ["http.response.start", "http.response.body"]
