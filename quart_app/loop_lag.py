"""Event-loop lag: a tick sleeps 20 ms on the app's loop; how late it wakes is how long the loop was blocked.

Every request waits while the loop is blocked (a regex on a huge string, a sync call), so GET /status shows the worst
lag since start, the 99th percentile of the last minute and when the last stalls ended. A stall of d seconds shows as
a lag between d - tick_s and d (it may begin anywhere inside a tick's sleep). Each stall also says how long the loop's
thread waited for a CPU meanwhile (Linux schedstat): that part is the machine's load, not the app blocking its loop.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from quart_app.background_loops import LoopHandle

TICK_S = 0.02
WINDOW_S = 60.0
# ticks at least this late are kept with their wall-clock time, so a stall can be matched to what ran then
STALL_S = 0.05
RECENT_STALLS = 20


class LoopLagMonitor:
    """Run by BackgroundLoops as `event_loop_lag`; `snapshot()` is the `event_loop` part of GET /status."""

    LOOP_NAME = "event_loop_lag"

    def __init__(self, tick_s: float = TICK_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.tick_s = tick_s
        self._clock = clock
        self.max_lag_s = 0.0
        # (when, lag) of every tick in the last WINDOW_S: 3,000 pairs at the default tick
        self._recent: deque[tuple[float, float]] = deque()
        # (wall-clock time the loop ran again, lag, CPU wait) of the last RECENT_STALLS ticks late by STALL_S or more
        self._stalls: deque[tuple[float, float, float]] = deque(maxlen=RECENT_STALLS)

    def record(self, lag_s: float, cpu_wait_s: float = 0.0) -> None:
        """One tick's lag and how long the loop's thread waited for a CPU during it; ticks older than WINDOW_S go."""
        now = self._clock()
        self.max_lag_s = max(self.max_lag_s, lag_s)
        self._recent.append((now, lag_s))
        if lag_s >= STALL_S:
            self._stalls.append((time.time(), lag_s, min(cpu_wait_s, lag_s)))
        horizon = now - WINDOW_S
        while self._recent[0][0] < horizon:
            self._recent.popleft()

    async def run(self, handle: LoopHandle) -> None:
        handle.status.set("running", f"a tick every {self.tick_s * 1000:g} ms")
        with ThreadCpuWait() as cpu_wait:  # opened here: it reads the schedstat of the loop's thread
            waited = cpu_wait.seconds()
            while not handle.stopping.is_set():
                due = self._clock() + self.tick_s
                await asyncio.sleep(self.tick_s)
                lag = max(0.0, self._clock() - due)
                before, waited = waited, cpu_wait.seconds()
                self.record(lag, waited - before)

    def snapshot(self) -> dict[str, Any]:
        horizon = self._clock() - WINDOW_S
        lags = sorted(lag for when, lag in self._recent if when >= horizon)
        p99 = lags[math.ceil(0.99 * len(lags)) - 1] if lags else 0.0
        return {
            "max_lag_ms": _ms(self.max_lag_s),
            "lag_ms_p99_last_minute": _ms(p99),
            "lag_ms_max_last_minute": _ms(lags[-1] if lags else 0.0),
            "ticks_last_minute": len(lags),
            "tick_ms": _ms(self.tick_s),
            "recent_stalls": [
                {"at": round(at, 3), "lag_ms": _ms(lag), "cpu_wait_ms": _ms(wait)} for at, lag, wait in self._stalls
            ],
        }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


class ThreadCpuWait:
    """Seconds the calling thread has been runnable but waiting for a CPU, from /proc/thread-self/schedstat (its
    second field, in ns); always 0 where that file does not exist. One pread per call on a file kept open."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None

    def seconds(self) -> float:
        if self._fd is None:
            return 0.0
        return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9

    def __enter__(self) -> ThreadCpuWait:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
