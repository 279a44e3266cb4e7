"""Waiting in async tests for a condition: one that needs an await (a query, a request) to check, or a cheap one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60.0) -> None:
    """Check every 50 ms until `check()` is true; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.05)


async def until(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
    """Poll a cheap in-memory condition (a fake's state, a file) every 20 ms until it holds; AssertionError naming
    `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_while_progressing(
    check: Callable[[], Awaitable[bool]], progress: Callable[[], Awaitable[int]], what: str, stalled_s: float = 60.0
) -> None:
    """Check every 50 ms until `check()` is true; AssertionError naming `what` once `progress()` (a count that rises
    while the work goes on, such as the vectors written) has not risen for `stalled_s`. A loaded machine only slows the
    wait down; work that stops still fails it, and it ends since the count has a ceiling (the chunks to fill in)."""
    highest = await progress()
    rose_at = time.monotonic()
    while not await check():
        count = await progress()
        if count > highest:
            highest, rose_at = count, time.monotonic()
        elif time.monotonic() - rose_at > stalled_s:
            raise AssertionError(f"gave up waiting for {what}: stuck at {highest} for {stalled_s:g} s")
        await asyncio.sleep(0.05)
