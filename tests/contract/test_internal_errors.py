"""A ValueError that is not about the client's input is our bug: 500 "Internal error", not 400 "Error: ..."."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from contract_kit import running_app, signed_headers
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_app import create_app
from quart_app.app_settings import AppSettings
from quart_app.chunking.errors import ChunkerInputError
from quart_app.services.errors import InvalidRequestError, ScopeError

RAISED = {
    "value-error": ValueError("an internal invariant broke"),
    "chunker-input": ChunkerInputError("text was not normalized"),
    "invalid-request": InvalidRequestError("no user id given; send a non-empty user id"),
    "scope": ScopeError("scopeType 'folder' is not supported; use 'provider' or 'source' (or omit it)"),
}


@pytest.fixture
async def faulty_client(settings: AppSettings) -> AsyncIterator[Client]:
    """The real app with its real error handlers, plus a route that raises what a service might."""
    app: Quart = create_app(settings)

    @app.get("/raise/<name>")
    async def raise_it(name: str) -> str:
        raise RAISED[name]

    async with running_app(app) as running:
        yield running.test_client()


@pytest.mark.parametrize("name", ["value-error", "chunker-input"])
async def test_an_unexpected_value_error_is_an_internal_error(faulty_client: Client, name: str) -> None:
    response = await faulty_client.get(f"/raise/{name}", headers=signed_headers())
    body = await response.get_json()
    assert response.status_code == 500
    kind = type(RAISED[name]).__name__
    assert body == {
        "error": f"Internal error in GET /raise/{name}: {kind}; the traceback is in the app log "
        "($APP_PERSISTENT_STORAGE/logs, or GET /downloadLogs)"
    }
    assert "cc-retry" not in response.headers


@pytest.mark.parametrize("name", ["invalid-request", "scope"])
async def test_errors_about_the_clients_input_keep_upstreams_400(faulty_client: Client, name: str) -> None:
    response = await faulty_client.get(f"/raise/{name}", headers=signed_headers())
    assert response.status_code == 400
    assert await response.get_json() == {"error": f"Error: {RAISED[name]}"}
