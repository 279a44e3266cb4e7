"""RuntimeThread's initializer: it runs on the thread itself before the first call, and a failing one leaves the
calls served."""

from __future__ import annotations

import os
import threading

import pytest

from quart_app.embedder.runtime_thread import RuntimeThread


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_the_initializer_runs_on_the_thread_before_its_first_call() -> None:
    ran_on: list[int] = []

    def lower() -> None:
        ran_on.append(threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, _niceness() + 5))

    thread = RuntimeThread("test-initializer", lower)
    try:
        thread_id, niceness = await thread.submit(lambda: (threading.get_native_id(), _niceness()))
        assert ran_on == [thread_id] != [threading.get_native_id()]
        # a per-thread setting: the thread is niced, the caller is not
        assert niceness == min(19, _niceness() + 5)
    finally:
        assert await thread.stop(5)


async def test_a_failing_initializer_is_logged_and_the_calls_are_still_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> None:
        raise OSError("not permitted")

    thread = RuntimeThread("test-broken-initializer", broken)
    try:
        assert await thread.submit(lambda: 42) == 42
        assert "initializer of runtime thread test-broken-initializer failed" in caplog.text
    finally:
        assert await thread.stop(5)
