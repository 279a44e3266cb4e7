"""JSON request bodies on the real engine: a size limit that names itself, and 422s that echo a bounded input."""

from __future__ import annotations

import json
from typing import Any

from contract_kit import signed_headers
from quart.typing import TestClientProtocol as Client

from quart_app.http_errors import ECHO_INPUT_CHARS

MIB = 1024 * 1024
TOO_LARGE = {
    "error": "The request body is larger than the limit of 8 MiB for JSON requests (max_json_request_mb); "
    "send fewer ids per request, or raise the limit in config.yaml"
}


async def post_raw(client: Client, path: str, raw: bytes, **headers: str) -> tuple[int, Any, int]:
    sent = {**signed_headers(), "Content-Type": "application/json", **headers}
    response = await client.post(path, data=raw, headers=sent)
    text = await response.get_data(as_text=True)
    return response.status_code, json.loads(text), len(text)


async def test_a_json_body_over_the_limit_answers_413_naming_it(client: Client) -> None:
    ids = [f"files__default: {n}" for n in range(340_000)]
    raw = json.dumps({"sourceIds": ids}).encode()
    assert 8 * MIB < len(raw) < 9 * MIB
    # read until the limit (no Content-Length) and refused from the declared Content-Length alone
    assert (await post_raw(client, "/deleteSources", raw))[:2] == (413, TOO_LARGE)
    assert (await post_raw(client, "/deleteSources", raw, **{"Content-Length": str(len(raw))}))[:2] == (413, TOO_LARGE)


async def test_the_largest_legitimate_request_fits_under_the_limit(client: Client) -> None:
    # a file shared with 100,000 users whose ids have Nextcloud's maximum length of 64 characters
    users = [f"{n:06d}".ljust(64, "u") for n in range(100_000)]
    raw = json.dumps({"userIds": users, "sourceId": "files__default: 1"}).encode()
    assert len(raw) > 6 * MIB
    status, body, _ = await post_raw(client, "/updateAccessDeclarative", raw)
    assert (status, body) == (200, {"message": "Access updated"})


async def test_a_422_echoes_at_most_a_few_hundred_characters_of_the_input(client: Client) -> None:
    long_value = "x" * 100_000
    raw = json.dumps({"userId": "alice", "query": "q", "ctxLimit": long_value}).encode()
    status, body, size = await post_raw(client, "/query", raw)
    assert status == 422 and size < 1000
    assert body["detail"] == [
        {
            "type": "int_parsing",
            "loc": ["body", "ctxLimit"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": "x" * ECHO_INPUT_CHARS + "…",
        }
    ]
    # a missing field echoes the whole object: its JSON text is cut the same way
    status, body, size = await post_raw(client, "/query", json.dumps({"query": long_value}).encode())
    assert status == 422 and size < 1000
    assert body["detail"][0]["loc"] == ["body", "userId"]
    assert body["detail"][0]["input"] == ('{"query":"' + long_value)[:ECHO_INPUT_CHARS] + "…"
    # a body that is not JSON at all
    status, body, size = await post_raw(client, "/query", b"{" + b"z" * 100_000)
    assert status == 422 and size < 1000 and body["detail"][0]["type"] == "json_invalid"
    assert body["detail"][0]["input"] == ("{" + "z" * 100_000)[:ECHO_INPUT_CHARS] + "…"
    # short inputs are echoed whole, as FastAPI does
    status, body, _ = await post_raw(
        client, "/query", json.dumps({"userId": "a", "query": "q", "ctxLimit": 0}).encode()
    )
    assert status == 422 and body["detail"][0]["input"] == 0
