"""EngineOpening: start-up waits for the first attempt only so long; past it the opening goes on in its loop, a failed
attempt is tried again with a growing pause, and a stop cancels an attempt under way (its clean-up runs)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from async_wait import wait_until

from quart_app.background_loops import BackgroundLoops
from quart_app.engine_opening import EngineOpening, StageFn, StartUp
from quart_app.runtimes.errors import EmbeddingServiceError
from quart_app.store.database_outage import DatabaseReachability
from quart_app.store.errors import DatabaseUnavailableError

WAIT_S = 0.2


class ScriptedOpener:
    """Each attempt reports a step, waits for `release`, then ends as `outcomes` says (True, False or an exception)."""

    def __init__(self, *outcomes: bool | Exception) -> None:
        self.outcomes = list(outcomes)
        self.release = asyncio.Event()
        self.attempts = 0
        self.cleaned_up = 0

    async def __call__(self, stage: StageFn) -> bool:
        self.attempts += 1
        stage(f"attempt {self.attempts}: applying the schema migrations")
        try:
            await self.release.wait()
        finally:
            self.cleaned_up += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def test_an_opening_inside_the_wait_decides_start_up() -> None:
    opener = ScriptedOpener(True)
    opener.release.set()
    opening = EngineOpening(opener, BackgroundLoops())
    assert await opening.during_start_up(WAIT_S, asyncio.Event()) is StartUp.OPENED
    assert opening.status.state == "opened"


async def test_models_missing_inside_the_wait_leave_the_step_that_waits() -> None:
    async def models_missing(stage: StageFn) -> bool:
        stage("for POST /init to fetch the models")
        return False

    opening = EngineOpening(models_missing, BackgroundLoops())
    assert await opening.during_start_up(WAIT_S, asyncio.Event()) is StartUp.WAITING
    assert (opening.status.state, opening.status.detail) == ("waiting", "for POST /init to fetch the models")


async def test_a_failure_inside_the_wait_fails_start_up_and_is_not_retried() -> None:
    opener = ScriptedOpener(RuntimeError("pgvector is missing"))
    opener.release.set()
    loops = BackgroundLoops()
    opening = EngineOpening(opener, loops, retry_base_s=0.01)
    with pytest.raises(RuntimeError, match="pgvector is missing"):
        await opening.during_start_up(WAIT_S, asyncio.Event())
    await asyncio.sleep(0.1)
    assert opener.attempts == 1 and not loops.running(EngineOpening.LOOP_NAME)


async def test_postgres_out_of_reach_inside_the_wait_lets_start_up_end_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before, it failed start-up like any other error: the app exited, answering nothing, to be restarted by
    supervisord every half minute (or never again, FATAL, once its start-ups failed fast)."""
    away = DatabaseUnavailableError("PostgreSQL did not accept connections within 30 s")
    opener = ScriptedOpener(away, away, away, True)
    reachability = DatabaseReachability()
    reachability.unreachable("connection refused")

    async def attempt(stage: StageFn) -> bool:
        if opener.attempts == 2:  # the third attempt meets another cause
            reachability.unreachable("password authentication failed")
        return await opener(stage)

    loops = BackgroundLoops()
    opening = EngineOpening(attempt, loops, retry_base_s=0.01, reachability=reachability)
    opener.release.set()
    with caplog.at_level(logging.DEBUG, logger="quart_app.engine_opening"):
        assert await opening.during_start_up(WAIT_S, asyncio.Event()) is StartUp.DATABASE_AWAY
        assert (opening.status.state, opening.status.detail) == ("waiting", "for PostgreSQL (trying again in 0.01 s)")
        await _until_not_running(loops)
    assert opener.attempts == 4 and opening.status.state == "opened"
    told = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert [level for level, _ in told] == ["ERROR", "WARNING"], told
    first = "PostgreSQL cannot be reached (connection refused): the engine is not open (attempt 1)"
    assert told[0][1].startswith(first), told
    assert "it opens by itself once PostgreSQL answers. Start PostgreSQL" in told[0][1]
    assert told[1][1] == "PostgreSQL still cannot be reached, now: password authentication failed (attempt 3)"
    assert not any(r.exc_info for r in caplog.records), "no traceback for an outage"
    assert "engine opened after start-up (attempt 4)" in caplog.text


async def test_while_postgres_cannot_be_reached_the_pause_between_attempts_stops_growing_early() -> None:
    """Before, it grew to 5 minutes, as for any other failure: a PostgreSQL back after a long outage waited that long
    for the next attempt (each attempt itself waits pgvector.connect_timeout_s for it, quietly)."""
    away = DatabaseUnavailableError("PostgreSQL did not accept connections within 30 s")
    opener = ScriptedOpener(away, away, away, away, True)
    opener.release.set()
    told: list[str] = []

    async def attempt(stage: StageFn) -> bool:
        told.append(opening.status.detail)  # what the attempt before said
        return await opener(stage)

    loops = BackgroundLoops()
    opening = EngineOpening(attempt, loops, retry_base_s=0.01, outage_retry_max_s=0.03)
    assert await opening.during_start_up(WAIT_S, asyncio.Event()) is StartUp.DATABASE_AWAY
    await _until_not_running(loops)
    pauses = [detail.removeprefix("for PostgreSQL (trying again in ").removesuffix(" s)") for detail in told[1:]]
    assert pauses == ["0.01", "0.02", "0.03", "0.03"], told


async def test_a_long_opening_lets_start_up_end_and_goes_on_in_its_loop(caplog: pytest.LogCaptureFixture) -> None:
    opener = ScriptedOpener(True)
    loops = BackgroundLoops()
    opening = EngineOpening(opener, loops)
    assert await opening.during_start_up(WAIT_S, asyncio.Event()) is StartUp.STILL_OPENING
    status = opening.status
    assert (status.state, status.detail) == ("opening", "attempt 1: applying the schema migrations")
    with caplog.at_level(logging.INFO, logger="quart_app.engine_opening"):
        opener.release.set()
        await _until_not_running(loops)
    assert status.state == "opened"
    assert "engine opened after start-up (attempt 1)" in caplog.text


async def test_a_failure_after_start_up_is_tried_again_after_a_growing_pause(caplog: pytest.LogCaptureFixture) -> None:
    opener = ScriptedOpener(ConnectionError("PostgreSQL went away"), ConnectionError("still away"), True)
    loops = BackgroundLoops()
    opening = EngineOpening(opener, loops, retry_base_s=0.05)
    assert await opening.during_start_up(WAIT_S, asyncio.Event()) is StartUp.STILL_OPENING
    with caplog.at_level(logging.ERROR, logger="quart_app.engine_opening"):
        opener.release.set()
        await _until_not_running(loops)
    assert opener.attempts == 3
    assert opening.status.state == "opened"
    assert "the engine did not open (attempt 1); trying again in 0.05 s" in caplog.text
    assert "the engine did not open (attempt 2); trying again in 0.1 s" in caplog.text


async def test_a_stop_during_the_wait_cancels_the_attempt_and_runs_its_clean_up() -> None:
    opener = ScriptedOpener(True)
    loops = BackgroundLoops()
    opening = EngineOpening(opener, loops)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    assert await opening.during_start_up(60, stop) is StartUp.STOPPED
    assert opener.cleaned_up == 1 and not loops.running(EngineOpening.LOOP_NAME)
    assert opening.status.state == "stopped"


async def test_closing_the_loops_cancels_an_opening_that_outlasted_start_up() -> None:
    opener = ScriptedOpener(True)
    loops = BackgroundLoops()
    opening = EngineOpening(opener, loops)
    assert await opening.during_start_up(WAIT_S, asyncio.Event()) is StartUp.STILL_OPENING
    await asyncio.wait_for(loops.close(), 5)
    assert opener.cleaned_up == 1 and opener.outcomes == [True]
    assert opening.status.state == "stopped"


async def test_models_missing_after_start_up_are_not_logged_as_opened(caplog: pytest.LogCaptureFixture) -> None:
    opener = ScriptedOpener(False)
    loops = BackgroundLoops()
    opening = EngineOpening(opener, loops)
    assert await opening.during_start_up(WAIT_S, asyncio.Event()) is StartUp.STILL_OPENING
    with caplog.at_level(logging.INFO, logger="quart_app.engine_opening"):
        opener.release.set()
        await _until_not_running(loops)
    assert opening.status.state == "waiting"
    assert "engine opened" not in caplog.text


async def test_an_embedding_service_out_of_reach_is_an_outage_and_one_refusing_our_key_still_fails_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before, an embedding service still away past its start-up grace failed start-up like a bad config."""
    away = EmbeddingServiceError(
        "cannot reach the embedding service at http://127.0.0.1:9/v1/models: ConnectError: refused; is it running?",
        status=None,
        retryable=True,
        unavailable=True,
    )
    opener = ScriptedOpener(away, away, True)
    opener.release.set()
    loops = BackgroundLoops()
    opening = EngineOpening(opener, loops, retry_base_s=0.01)
    with caplog.at_level(logging.DEBUG, logger="quart_app.engine_opening"):
        assert await opening.during_start_up(WAIT_S, asyncio.Event()) is StartUp.EMBEDDER_AWAY
        assert opening.status.state == "waiting"
        assert opening.status.detail == "for the embedding service (trying again in 0.01 s)"
        await _until_not_running(loops)
    assert opener.attempts == 3 and opening.status.state == "opened"
    told = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(told) == 1 and told[0].startswith(f"The embedding service cannot be reached ({away.message})"), told
    refused = EmbeddingServiceError("GET http://127.0.0.1:9/v1/models answered 401: no", status=401, retryable=False)
    failing = ScriptedOpener(refused)
    failing.release.set()
    with pytest.raises(EmbeddingServiceError, match="answered 401"):
        await EngineOpening(failing, BackgroundLoops(), retry_base_s=0.01).during_start_up(WAIT_S, asyncio.Event())


async def _until_not_running(loops: BackgroundLoops) -> None:
    async def ended() -> bool:
        return not loops.running(EngineOpening.LOOP_NAME)

    await wait_until(ended, "the opening loop to end", timeout_s=5)
