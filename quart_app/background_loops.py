"""One owner of the app's background loops (init job, pollers): started in one place, stopped with a timeout.

In the spirit of Quart's `add_background_task`, but supervised: an unexpected exception is logged and the loop is
restarted after a pause instead of dying silently, and each loop's state is a `LoopStatus` that GET /status shows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from quart_app.stop_deadline import CLOSE_RESERVE_S, DRAIN_RESERVE_S, StopDeadline

log = logging.getLogger(__name__)


@dataclass
class LoopStatus:
    """What a loop is doing now (state, detail, since when) and what it has done (counters)."""

    name: str
    state: str = "starting"
    detail: str = ""
    since: float = field(default_factory=time.time)
    counters: dict[str, int] = field(default_factory=dict)

    def set(self, state: str, detail: str = "") -> None:
        if (state, detail) != (self.state, self.detail):
            self.state, self.detail, self.since = state, detail, time.time()

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "detail": self.detail,
            "since": round(self.since, 3),
            "counters": dict(self.counters),
        }


DETAIL_CHARS = 300


def loop_detail(exc: BaseException, prefix: str = "") -> str:
    """A loop's status detail for a failure: the exception's class and message, cut to fit GET /status."""
    return f"{prefix}{type(exc).__name__}: {exc}"[:DETAIL_CHARS]


class LoopHandle:
    """Given to a loop: its status, the stop signal, and a sleep that ends early on stop or on a wake event."""

    def __init__(self, status: LoopStatus, stopping: asyncio.Event) -> None:
        self.status = status
        self.stopping = stopping

    async def sleep(self, seconds: float, *wake: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(event.wait()) for event in (self.stopping, *wake)]
        try:
            await asyncio.wait(waits, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()


LoopFn = Callable[[LoopHandle], Awaitable[None]]


def backoff(base_s: float, max_s: float, attempt: int) -> float:
    """base, 2*base, 4*base, … capped at max_s (attempt counts from 1)."""
    return float(min(max_s, base_s * (2 ** max(0, attempt - 1))))


# a loop's step (an HTTP call, an answer, a batch) gets this long after the stop signal, then is cancelled: claimed
# work comes back, an answer cut off fails its task (the user asks again); the appliance must stop inside Docker's 10 s.
# Once the app's stop deadline has begun, the loops get what is left of it instead (quart_app/stop_deadline.py)
SHUTDOWN_GRACE_S = 3.0


class BackgroundLoops:
    """Keeps a reference to every task it starts; `close()` signals stop, waits up to a timeout, then cancels."""

    def __init__(
        self,
        shutdown_timeout_s: float = SHUTDOWN_GRACE_S,
        restart_delay_s: float = 5.0,
        deadline: StopDeadline | None = None,
    ) -> None:
        self.shutdown_timeout_s = shutdown_timeout_s
        self.restart_delay_s = restart_delay_s
        # the app's stop deadline: once begun, a stop waits for what is left of it, not for shutdown_timeout_s
        self.deadline = deadline
        self._closed = False
        # set by ask_to_stop() for every loop: one started after it (the engine opened at that moment) stops at once
        self._stopping_all = False
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stops: dict[str, asyncio.Event] = {}
        self._statuses: dict[str, LoopStatus] = {}
        self._on_stop: dict[str, Callable[[], None]] = {}

    def start(
        self, name: str, loop: LoopFn, *, restart: bool = True, on_stop: Callable[[], None] | None = None
    ) -> LoopStatus:
        """Run `loop(handle)` as a task named `name`; with `restart`, an unexpected exception restarts it."""
        if self._closed:
            raise RuntimeError(f"background loop {name!r} started after close(); the app is shutting down")
        running = self._tasks.get(name)
        if running is not None and not running.done():
            raise RuntimeError(f"background loop {name!r} is already running")
        status = LoopStatus(name)
        self._statuses[name] = status
        if on_stop is not None:
            self._on_stop[name] = on_stop
        self._stops[name] = asyncio.Event()
        if self._stopping_all:
            self._stops[name].set()
        handle = LoopHandle(status, self._stops[name])
        self._tasks[name] = asyncio.get_running_loop().create_task(self._supervise(loop, handle, restart), name=name)
        return status

    def running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    async def _supervise(self, loop: LoopFn, handle: LoopHandle, restart: bool) -> None:
        status = handle.status
        while True:
            try:
                await loop(handle)
                # a loop that ended by itself keeps its last word (the init job's "failed: …"); one told to stop stopped
                if handle.stopping.is_set() or status.state == "starting":
                    status.set("stopped")
                return
            except asyncio.CancelledError:
                status.set("stopped", "cancelled")
                raise
            except Exception as exc:
                log.exception("background loop %s failed", status.name)
                status.count("crashes")
                status.set("crashed", loop_detail(exc))
                if not restart or handle.stopping.is_set():
                    return
                await handle.sleep(self.restart_delay_s)
                if handle.stopping.is_set():
                    return
                log.info("background loop %s: restarting", status.name)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: status.as_json() for name, status in self._statuses.items()}

    def ask_to_stop(self, names: Iterable[str] | None = None) -> None:
        """Signal these loops (default: all) to stop after their current step, without waiting for them: at the stop
        signal they wind down while hypercorn lets the requests in flight finish."""
        if names is None:
            self._stopping_all = True
            if self.deadline is not None and self.deadline.begun:
                # cut at the drain's end, as hypercorn cuts the requests: not only once after_serving gets to them
                drain_s = self.deadline.left(DRAIN_RESERVE_S)
                asyncio.get_running_loop().call_later(drain_s, self._cancel_running, drain_s)
        for name in list(self._tasks) if names is None else names:
            if name in self._stops:
                self._stops[name].set()
            ask_to_stop = self._on_stop.pop(name, None)
            if ask_to_stop is not None:
                ask_to_stop()

    def _cancel_running(self, waited_s: float) -> None:
        for task in self._tasks.values():
            if not task.done() and not task.cancelling():
                log.warning("background loop %s did not stop within %.2g s; cancelling it", task.get_name(), waited_s)
                task.cancel()

    async def stop(self, names: Iterable[str], timeout_s: float | None = None) -> None:
        """Stop these loops: signal, wait up to the timeout, cancel the rest and wait as long again for them to end (a
        loop that ignores its cancel is left running, with a warning). Without `timeout_s` the waits are
        shutdown_timeout_s, or once the app's stop deadline has begun, what is left of it before its reserves."""
        names = list(names)
        self.ask_to_stop(names)
        tasks = []
        for name in names:
            task = self._tasks.pop(name, None)
            if task is not None and not task.done():
                tasks.append(task)
        if not tasks:
            return
        grace = self._wait_s(timeout_s, DRAIN_RESERVE_S)
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        if not pending:
            return
        for task in pending:
            if not task.cancelling():  # not already cancelled at the drain's end
                log.warning("background loop %s did not stop within %.2g s; cancelling it", task.get_name(), grace)
                task.cancel()
        # as long again for their cancel to end them; a cancel of this stop ends it here, it is not swallowed
        after_cancel = self._wait_s(timeout_s, CLOSE_RESERVE_S)
        _ended, stuck = await asyncio.wait(pending, timeout=after_cancel)
        for task in stuck:
            name = task.get_name()
            log.warning(
                "background loop %s still runs %.2g s after its cancel; going on without it", name, after_cancel
            )

    def _wait_s(self, timeout_s: float | None, reserve_s: float) -> float:
        if timeout_s is not None:
            return timeout_s
        if self.deadline is not None and self.deadline.begun:
            return self.deadline.left(reserve_s)
        return self.shutdown_timeout_s

    async def close(self) -> None:
        """Stop every loop and refuse new ones; idempotent."""
        self._closed = True
        await self.stop(list(self._tasks))
