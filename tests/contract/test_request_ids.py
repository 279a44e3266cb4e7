"""Request ids: AppAPI's AA-REQUEST-ID is kept and echoed, occ's shared 'CLI' made unique, a bad one replaced; the
id is on every line logged while the request is handled, and one line per request says how it ended."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from contract_kit import contract_config, make_settings, signed_headers
from quart.typing import TestClientProtocol as Client

from appliance.json_logging import JsonLineFormatter
from quart_app import create_app
from quart_app.request_ids import choose_request_id

NO_DB = "postgresql://nobody@127.0.0.1:9/none"  # never opened: these tests do not run the lifespan


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("Xy7pQ2rLm9ZkT4bNw1cD", True),  # Nextcloud's IRequest::getId()
        ("0f8e2c1a-7b6d-4e5f-9a8b-1c2d3e4f5a6b", True),
        ("", False),
        ("two words", False),
        ("id\nforged", False),
        ("x" * 129, False),
    ],
)
def test_a_usable_id_is_kept_and_anything_else_replaced(sent: str, kept: bool) -> None:
    chosen = choose_request_id(sent)
    assert (chosen == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{20}", chosen)


def test_occs_shared_cli_id_gets_a_unique_suffix() -> None:
    first, second = choose_request_id("CLI"), choose_request_id("CLI")
    assert re.fullmatch(r"CLI-[0-9a-f]{12}", first) and first != second


async def test_the_id_is_echoed_and_on_every_line_of_its_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(tmp_path, NO_DB, contract_config("http://127.0.0.1:9/v1")))
    client = app.test_client()
    formatter = JsonLineFormatter("app")
    formatted: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            formatted.append(formatter.format(record))  # in the request's context, as the queue handler does

    capture = Capture()
    logging.getLogger().addHandler(capture)
    try:
        with caplog.at_level(logging.INFO):
            ok = await client.get("/", headers={**signed_headers("alice"), "AA-REQUEST-ID": "ncReqAbc123"})
            refused = await client.get("/", headers={**signed_headers(secret="wrong"), "AA-REQUEST-ID": "ncReqDef456"})
            heartbeat = await client.get("/heartbeat")
    finally:
        logging.getLogger().removeHandler(capture)
    assert ok.headers["AA-REQUEST-ID"] == "ncReqAbc123"
    assert refused.status_code == 401 and refused.headers["AA-REQUEST-ID"] == "ncReqDef456"
    assert re.fullmatch(r"[0-9a-f]{20}", heartbeat.headers["AA-REQUEST-ID"])
    assert '"msg": "GET / 200", "request_id": "ncReqAbc123", "method": "GET", "path": "/", "status": 200' in "\n".join(
        formatted
    )
    refused_lines = [line for line in formatted if '"request_id": "ncReqDef456"' in line]
    assert [('"refused GET /' in line, '"status": 401' in line) for line in refused_lines] == [
        (True, False),
        (False, True),
    ]
    # AppAPI's and the health check's polling leaves no line
    assert not [line for line in formatted if "/heartbeat" in line]


async def test_a_long_path_is_logged_cut_with_a_marker(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(make_settings(tmp_path, NO_DB, contract_config("http://127.0.0.1:9/v1")))
    path = "/" + "p" * 8000
    with caplog.at_level(logging.INFO):
        refused = await app.test_client().get(path)
    assert refused.status_code == 401
    cut = "/" + "p" * 1023 + "…[cut: 8001 characters]"
    # the refusal and the access line: the path's first 1024 characters, then how long it was
    assert [record.getMessage() for record in caplog.records] == [
        f"refused GET {cut}: missing required headers: EX-APP-ID, EX-APP-VERSION, AUTHORIZATION-APP-API",
        f"GET {cut} 401",
    ]
    assert caplog.records[-1].__dict__["path"] == cut


async def test_polled_status_leaves_a_line_only_when_it_fails(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    """`ccb status --watch`, `ccb index` and an open status page ask GET /status (and /status/history) every few
    seconds: a line for each answered one would fill the log; a refused one is still logged."""
    with caplog.at_level(logging.INFO, logger="quart_app.request_ids"):
        for _ in range(3):
            assert (await client.get("/status", headers=signed_headers())).status_code == 200
            assert (await client.get("/status/history", headers=signed_headers())).status_code == 200
        refused = await client.get("/status", headers=signed_headers(secret="wrong"))
    assert refused.status_code == 401
    assert [record.getMessage() for record in caplog.records if record.name == "quart_app.request_ids"] == [
        "GET /status 401"
    ]
