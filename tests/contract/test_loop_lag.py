"""The event-loop lag monitor: a blocking call shows up as lag, an idle loop stays low, GET /status reports it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from contract_kit import signed_headers
from quart.typing import TestClientProtocol as Client

from quart_app.background_loops import BackgroundLoops
from quart_app.loop_lag import WINDOW_S, LoopLagMonitor, ThreadCpuWait

BLOCK_S = 0.3


async def test_a_blocking_call_on_the_loop_shows_as_lag_and_an_idle_loop_stays_low() -> None:
    loops = BackgroundLoops()
    monitor = LoopLagMonitor()
    loops.start(LoopLagMonitor.LOOP_NAME, monitor.run)
    try:
        await asyncio.sleep(10 * monitor.tick_s)
        idle = monitor.snapshot()
        assert idle["ticks_last_minute"] >= 5 and idle["max_lag_ms"] < 100, idle
        blocked_at = time.time()
        time.sleep(BLOCK_S)  # noqa: ASYNC251 - the stall under test
        # the late tick records as soon as the loop runs again
        await asyncio.sleep(2 * monitor.tick_s)
        blocked = monitor.snapshot()
    finally:
        await loops.close()
    # the stall may start anywhere inside a tick's sleep, so up to one tick of it is not counted
    assert blocked["max_lag_ms"] >= BLOCK_S * 1000 - blocked["tick_ms"], blocked
    assert blocked["lag_ms_max_last_minute"] == blocked["max_lag_ms"]
    # a few ticks: the one late tick is the 99th percentile
    assert blocked["lag_ms_p99_last_minute"] == blocked["max_lag_ms"]
    stall = blocked["recent_stalls"][-1]
    # "at" is rounded to the millisecond
    assert stall["lag_ms"] == blocked["max_lag_ms"] and blocked_at + BLOCK_S - 0.001 <= stall["at"] < time.time()
    # asleep in time.sleep the thread waits for no CPU: nearly all of the lag is the app's own
    assert stall["lag_ms"] - stall["cpu_wait_ms"] >= BLOCK_S * 1000 - blocked["tick_ms"], stall
    assert loops.snapshot()[LoopLagMonitor.LOOP_NAME]["state"] == "stopped"


def test_the_recent_window_forgets_what_the_maximum_keeps() -> None:
    now = [1000.0]
    monitor = LoopLagMonitor(clock=lambda: now[0])
    monitor.record(0.5, cpu_wait_s=0.2)
    stall_at = monitor.snapshot()["recent_stalls"][0]["at"]
    for _ in range(99):
        monitor.record(0.001)
    assert monitor.snapshot()["lag_ms_p99_last_minute"] == 1.0  # one slow tick in 100 is above the 99th percentile
    monitor.record(0.002)
    assert monitor.snapshot()["lag_ms_p99_last_minute"] == 2.0
    now[0] += WINDOW_S + 1
    monitor.record(0.003)
    assert monitor.snapshot() == {
        "max_lag_ms": 500.0,
        "lag_ms_p99_last_minute": 3.0,
        "lag_ms_max_last_minute": 3.0,
        "ticks_last_minute": 1,
        "tick_ms": 20.0,
        "recent_stalls": [{"at": stall_at, "lag_ms": 500.0, "cpu_wait_ms": 200.0}],
    }


def test_the_cpu_wait_is_the_run_queue_time_of_this_threads_schedstat() -> None:
    with ThreadCpuWait() as cpu_wait:
        before = cpu_wait.seconds()
        direct = int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
        after = cpu_wait.seconds()
    assert before <= direct <= after


async def test_status_reports_the_event_loop_lag(client: Client) -> None:
    response = await client.get("/status", headers=signed_headers("admin"))
    report = await response.get_json()
    assert response.status_code == 200
    assert report["loops"][LoopLagMonitor.LOOP_NAME]["state"] == "running"
    assert set(report["event_loop"]) == {
        "max_lag_ms",
        "lag_ms_p99_last_minute",
        "lag_ms_max_last_minute",
        "ticks_last_minute",
        "tick_ms",
        "recent_stalls",
    }
