"""One daemon thread that runs runtime calls in order, so a long batch can neither block the loop nor the exit."""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
_Call = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class RuntimeThread:
    """Calls run one at a time on a daemon thread (not a ThreadPoolExecutor: its threads are joined at exit)."""

    def __init__(self, name: str, initializer: Callable[[], None] | None = None) -> None:
        """`initializer` runs on the thread before its first call (a per-thread setting such as its niceness)."""
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._initializer = initializer
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """A future of `function(*args, **kwargs)`, resolved on the calling event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((functools.partial(function, *args, **kwargs), future, loop))
        return future

    async def stop(self, timeout_s: float) -> bool:
        """Let the running call finish for up to `timeout_s`; True when the thread ended."""
        self._calls.put(None)
        await asyncio.to_thread(self._thread.join, timeout_s)
        return not self._thread.is_alive()

    def _serve(self) -> None:
        if self._initializer is not None:
            try:
                self._initializer()
            except Exception:  # the calls are still served, without the setting
                log.exception("initializer of runtime thread %s failed", threading.current_thread().name)
        while (item := self._calls.get()) is not None:
            call, future, loop = item
            if future.cancelled():
                continue
            try:
                outcome: tuple[bool, Any] = (True, call())
            except Exception as exc:  # handed to the awaiting coroutine
                outcome = (False, exc)
            try:
                loop.call_soon_threadsafe(_resolve, future, outcome)
            except RuntimeError:  # the loop closed while the call ran; nobody waits any more
                log.debug("runtime call finished after its event loop closed")


def _resolve(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
