"""The app's one stop deadline: background loops and the engine's closers take what is left of it instead of graces
of their own that add up; a closer that would overrun it is abandoned with one warning; loops signalled at the stop
signal stop at their next check, and so does one started after it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import pytest

from quart_app.background_loops import BackgroundLoops, LoopHandle
from quart_app.stop_deadline import ClosingSteps, StopDeadline, close_within

# far longer than any test waits: a stop that used it instead of the deadline would hit the test's own limit
OWN_GRACE_S = 600.0
BUDGET_S = 0.4


async def _never_stops(handle: LoopHandle) -> None:
    await asyncio.Event().wait()


async def test_a_stop_after_the_deadline_began_cancels_a_busy_loop_within_the_budget_not_its_own_grace() -> None:
    deadline = StopDeadline(BUDGET_S)
    loops = BackgroundLoops(shutdown_timeout_s=OWN_GRACE_S, deadline=deadline)
    status = loops.start("busy", _never_stops, restart=False)
    await asyncio.sleep(0)
    deadline.begin()
    await asyncio.wait_for(loops.close(), 30)  # before: 600 s of grace, then 600 s more after the cancel
    assert (status.state, status.detail) == ("stopped", "cancelled")


async def test_without_a_begun_deadline_a_stop_keeps_its_own_grace() -> None:
    loops = BackgroundLoops(shutdown_timeout_s=OWN_GRACE_S, deadline=StopDeadline(BUDGET_S))
    loops.start("busy", _never_stops, restart=False)
    await asyncio.sleep(0)
    stop = asyncio.create_task(loops.close())
    done, _ = await asyncio.wait({stop}, timeout=BUDGET_S * 3)
    assert not done  # still in its 600 s grace
    stop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stop


async def test_loops_asked_to_stop_end_at_their_next_check_and_one_started_later_stops_at_once() -> None:
    loops = BackgroundLoops(shutdown_timeout_s=OWN_GRACE_S)
    checked: list[str] = []

    def until_stopped(name: str) -> Callable[[LoopHandle], Awaitable[None]]:
        async def loop(handle: LoopHandle) -> None:
            await handle.stopping.wait()
            checked.append(name)

        return loop

    first = loops.start("first", until_stopped("first"))
    await asyncio.sleep(0)
    loops.ask_to_stop()
    late = loops.start("late", until_stopped("late"))
    await asyncio.wait_for(loops.close(), 30)
    assert sorted(checked) == ["first", "late"]
    assert (first.state, late.state) == ("stopped", "stopped")


async def test_a_closer_past_the_deadline_is_abandoned_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    deadline = StopDeadline(BUDGET_S)
    deadline.begin()
    cancelled = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with caplog.at_level(logging.INFO, logger="quart_app.stop_deadline"):
        await asyncio.wait_for(close_within(deadline, "parse pool", stuck), 30)
        await asyncio.wait_for(cancelled.wait(), 30)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("closing parse pool abandoned")
    assert "closed parse pool" not in caplog.text


async def test_a_closer_without_a_begun_deadline_runs_to_its_end(caplog: pytest.LogCaptureFixture) -> None:
    deadline = StopDeadline(0.0)
    finished = asyncio.Event()

    async def slow() -> None:
        await asyncio.sleep(0.05)
        finished.set()

    with caplog.at_level(logging.INFO, logger="quart_app.stop_deadline"):
        await close_within(deadline, "database pool", slow)
    assert finished.is_set()
    assert "closed database pool in" in caplog.text


async def test_a_stuck_closer_takes_only_its_share_and_the_ones_after_it_still_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deadline = StopDeadline(BUDGET_S)
    closed: list[str] = []

    def quick(name: str) -> Callable[[], Awaitable[None]]:
        async def close() -> None:
            await asyncio.sleep(0.01)
            closed.append(name)

        return close

    async def stuck() -> None:
        await asyncio.Event().wait()

    stack = AsyncExitStack()
    steps = ClosingSteps(stack, deadline)
    steps.add("database pool", quick("database pool"))
    steps.add("parse pool", quick("parse pool"))
    steps.add("LLM backend llama", stuck)  # closed first
    deadline.begin()
    with caplog.at_level(logging.INFO, logger="quart_app.stop_deadline"):
        await asyncio.wait_for(stack.aclose(), 30)
    # before: the stuck LLM took the whole deadline, and the pools were abandoned with it
    assert closed == ["parse pool", "database pool"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("closing LLM backend llama abandoned")
