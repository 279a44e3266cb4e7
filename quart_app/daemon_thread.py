"""Blocking work a stop must not wait for: model downloads and model loads.

asyncio.to_thread's threads are joined when the event loop closes (Python 3.11 waits without a limit), so a model
load or a download stalled in a read that a stop cut off would hold the process past `docker stop`'s 10 s. These
run in daemon threads instead; the app server ends the process without waiting for the ones still running
(`still_running`), as a thread inside native code cannot be stopped and must not outlive the interpreter's
finalization.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import TypeVar

R = TypeVar("R")

_running: set[threading.Thread] = set()
_running_lock = threading.Lock()


async def in_daemon_thread(work: Callable[[], R], name: str) -> R:
    """`work()` in a daemon thread named `name`, with this task's context (the request id on its log lines); if the
    awaiting task is cancelled, the thread runs on and its result is dropped."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[R] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: R | None, error: BaseException | None) -> None:
        if outcome.done():  # the awaiting task was cancelled
            return
        if error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = context.run(work), None
        except BaseException as exc:
            result, error = None, exc
        finally:
            with _running_lock:
                _running.discard(threading.current_thread())
        with contextlib.suppress(RuntimeError):  # the event loop is closed: the app is gone
            loop.call_soon_threadsafe(settle, result, error)

    thread = threading.Thread(target=run, name=name, daemon=True)
    with _running_lock:
        _running.add(thread)
    thread.start()
    return await outcome


def still_running() -> list[str]:
    """Names of the daemon threads whose work has not ended."""
    with _running_lock:
        return sorted(thread.name for thread in _running)
