"""One deadline for the app's whole stop, shared by every step: in-flight requests, background loops, the engine's
closers. Each step takes what is left of it, so their graces cannot add up past supervisord's SIGKILL.

supervisord gives the app `stopwaitsecs` (4 s, supervisord.conf) between its SIGTERM and a SIGKILL, inside Docker's
10 s for the whole container. Before, the requests had hypercorn's 3 s, then the loops 3 s (and as long again for a
cancel), then each closer its own time: under load supervisord SIGKILLed the app in most stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

log = logging.getLogger(__name__)

# from the stop signal to the end of after_serving. supervisord SIGKILLs the app at 4 s, and the process still has to
# end after it: with the machine's load at 15, supervisord saw the app gone 1-2 s after it called os._exit
APP_STOP_BUDGET_S = 2.0
# the requests and the loops' steps finish by themselves until this long before the deadline, then are cancelled
DRAIN_RESERVE_S = 0.8
# the cancelled requests and loops end until this long before the deadline; the engine's closers have the rest
CLOSE_RESERVE_S = 0.4

Closer = Callable[[], Awaitable[None]]


class StopDeadline:
    """The moment by which the app's stop must be done; `begin()` (at the stop signal) fixes it, once."""

    def __init__(self, budget_s: float = APP_STOP_BUDGET_S) -> None:
        self.budget_s = budget_s
        self._began: float | None = None

    @property
    def begun(self) -> bool:
        return self._began is not None

    def begin(self) -> None:
        """Start the budget now, unless it has started already (a second signal does not extend it)."""
        if self._began is None:
            self._began = time.monotonic()
            log.info("stopping: %g s for requests, background loops and closing the engine", self.budget_s)

    def elapsed(self) -> float:
        """Seconds since begin() (0 before it)."""
        return 0.0 if self._began is None else time.monotonic() - self._began

    def left(self, reserve_s: float = 0.0) -> float:
        """Seconds until `reserve_s` before the deadline (never below 0); the whole budget before begin()."""
        return max(0.0, self.budget_s - reserve_s - self.elapsed())


async def close_within(deadline: StopDeadline | None, name: str, closer: Closer, steps_left: int = 1) -> None:
    """`closer()`, logged as `name` with its time. Once the stop's deadline has begun, it gets an equal share of what
    is left among the `steps_left` closing steps (itself and those after it), so one slow step cannot take the time
    of the others; past its share it is abandoned (its task cancelled, one warning): what it held (connections,
    worker processes, a model) ends with the process."""
    began = time.monotonic()
    step = asyncio.ensure_future(closer())
    if deadline is not None and deadline.begun:
        try:
            await asyncio.wait({step}, timeout=deadline.left() / max(1, steps_left))
        except asyncio.CancelledError:
            step.cancel()
            raise
        if not step.done():
            step.cancel()
            # its end, cancelled or failed, is nobody's business any more
            step.add_done_callback(lambda ended: ended.cancelled() or ended.exception())
            log.warning(
                "closing %s abandoned %.2f s after the stop signal, at its share of the stop's deadline: the process's"
                " exit ends what it holds",
                name,
                deadline.elapsed(),
            )
            return
    await step
    log.info("closed %s in %.2f s", name, time.monotonic() - began)


class ClosingSteps:
    """The engine's closers on its AsyncExitStack, closed in reverse order of `add`, each logged and bounded by the
    stop's deadline (`close_within`); a closer's error is logged and never hides the others."""

    def __init__(self, stack: AsyncExitStack, deadline: StopDeadline | None) -> None:
        self._stack = stack
        self._deadline = deadline
        self._count = 0

    def add(self, name: str, closer: Closer) -> None:
        # closed in reverse order: the steps added before this one still follow it when it runs
        steps_left = self._count + 1
        self._count += 1

        async def close() -> None:
            try:
                await close_within(self._deadline, name, closer, steps_left)
            except Exception:
                log.exception("closing %s failed", name)

        self._stack.push_async_callback(close)
