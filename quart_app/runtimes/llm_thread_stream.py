"""Run a blocking token iterator in a worker thread and consume it from asyncio, one piece at a time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator

_DONE = object()


async def iterate_in_thread(produce: Callable[[], Iterator[str]], model_lock: threading.Lock) -> AsyncIterator[str]:
    """Yield what `produce()` yields; the thread holds `model_lock` so the model never runs twice at once.

    Closing the async iterator early stops the thread at its next piece (the model then becomes free); `produce` may
    yield "" where stopping is possible but there is nothing to hand on.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def run() -> None:
        try:
            with model_lock:
                for piece in produce():
                    if stop.is_set():
                        break
                    if piece:  # "" only marks a point where the thread may stop (a prompt batch evaluated)
                        loop.call_soon_threadsafe(queue.put_nowait, piece)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    worker = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, str)
            yield item
    finally:
        stop.set()
        # the thread posts to this loop until it ends, so wait for it (it stops at its next piece)
        await asyncio.shield(worker)
