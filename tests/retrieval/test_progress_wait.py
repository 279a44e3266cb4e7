"""The wait the cross-lingual fill tests use (async_wait.wait_while_progressing): it fails a fill that stops, however
early, and never one that keeps going, however long it takes in all."""

from __future__ import annotations

import pytest
from async_wait import wait_while_progressing


async def test_work_that_stops_fails_the_wait() -> None:
    async def stuck_at_three() -> int:
        return 3

    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match=r"gave up waiting for the fill: stuck at 3 for 0\.1 s"):
        await wait_while_progressing(never, stuck_at_three, "the fill", stalled_s=0.1)


async def test_work_that_keeps_going_is_waited_for_past_the_stall_bound() -> None:
    filled = 0

    async def one_more() -> int:  # each look finds one chunk more: the count rises at every look
        nonlocal filled
        filled += 1
        return filled

    async def all_ten() -> bool:
        return filled >= 10

    # no look finds the count where it was, so even a bound of 0 s is never reached
    await wait_while_progressing(all_ten, one_more, "the fill", stalled_s=0.0)
    assert filled == 10
