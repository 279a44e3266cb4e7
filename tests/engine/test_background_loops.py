"""BackgroundLoops: a loop that outlives its grace at a stop is cancelled, one that ignores its cancel too is left
after a second grace (named in the log), a stop that is itself cancelled ends cancelled, and a loop that ends by
itself keeps its last state; a crashed one shows its exception, cut to the detail limit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from quart_app.background_loops import DETAIL_CHARS, BackgroundLoops, LoopHandle, loop_detail

GRACE_S = 0.05


def _stubborn(released: asyncio.Event, cancels: list[int]) -> Callable[[LoopHandle], Awaitable[None]]:
    async def loop(handle: LoopHandle) -> None:
        while not released.is_set():
            try:
                await released.wait()
            except asyncio.CancelledError:
                cancels.append(1)  # ignored: it ends only when released

    return loop


async def test_a_loop_that_ignores_its_cancel_is_left_after_a_second_grace(caplog: pytest.LogCaptureFixture) -> None:
    loops = BackgroundLoops(shutdown_timeout_s=GRACE_S)
    released, cancels = asyncio.Event(), list[int]()
    loops.start("stubborn", _stubborn(released, cancels), restart=False)
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="quart_app.background_loops"):
        await asyncio.wait_for(loops.stop(["stubborn"]), 5)  # before: waited for it for ever
    assert cancels == [1]
    assert "background loop stubborn still runs 0.05 s after its cancel" in caplog.text
    released.set()
    await asyncio.sleep(0)


async def test_a_stop_cancelled_while_it_waits_for_a_loop_is_cancelled_itself() -> None:
    loops = BackgroundLoops(shutdown_timeout_s=1.0)
    released, cancels = asyncio.Event(), list[int]()
    loops.start("stubborn", _stubborn(released, cancels), restart=False)
    await asyncio.sleep(0)
    stop = asyncio.create_task(loops.stop(["stubborn"]))
    await asyncio.sleep(1.5)  # past the grace: the loop is cancelled and the stop waits for its cancel to end it
    assert cancels == [1] and not stop.done()
    stop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(stop, 5)  # before: the stop swallowed its own cancel
    released.set()
    await asyncio.sleep(0)


async def test_a_loop_that_ends_by_itself_keeps_its_last_state_and_one_told_to_stop_is_stopped() -> None:
    loops = BackgroundLoops()

    async def fails_and_says_so(handle: LoopHandle) -> None:
        handle.status.set("failed", "the model server answered 404")

    async def runs_until_stopped(handle: LoopHandle) -> None:
        handle.status.set("idle", "nothing queued")
        await handle.stopping.wait()

    said = loops.start("init", fails_and_says_so, restart=False)
    told = loops.start("poller", runs_until_stopped)
    await asyncio.sleep(0.05)
    await loops.close()
    # before: the supervisor wrote "stopped" over the init job's failure, and GET /status lost it
    assert (said.state, said.detail) == ("failed", "the model server answered 404")
    assert (told.state, told.detail) == ("stopped", "")


async def test_a_crashed_loop_shows_the_exception_class_and_message_cut_to_the_detail_limit() -> None:
    loops = BackgroundLoops()

    async def crashes(handle: LoopHandle) -> None:
        raise ConnectionResetError("x" * 1000)

    crashed = loops.start("poller", crashes, restart=False)
    await asyncio.sleep(0.05)
    await loops.close()
    assert crashed.state == "crashed"
    assert crashed.detail == ("ConnectionResetError: " + "x" * 1000)[:DETAIL_CHARS]
    assert loop_detail(OSError("no route"), "database away: ") == "database away: OSError: no route"
