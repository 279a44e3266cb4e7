"""The whole appliance under supervisord, its app started while the embedded PostgreSQL is stopped: the app stays up
(one process, RUNNING), answers /heartbeat and GET /status, and opens its engine by itself once PostgreSQL is back.

Before, the engine's first attempt failed start-up and the app process exited: supervisord restarted it every
connect_timeout_s (30 s shipped), answering nothing meanwhile; and when an attempt gave up within `startsecs` (5 s,
here with connect_timeout_s 1) the app ended FATAL after `startretries`, so a PostgreSQL that came back later found
the appliance dead until someone restarted it by hand.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from appliance_kit import wait_for
from appliance_stack import ApplianceStack, shipped_config
from contract_kit import signed_headers
from local_ports import free_port

pytestmark = pytest.mark.slow
# an attempt that gives up on PostgreSQL inside supervisord's startsecs (5 s)
CONNECT_TIMEOUT_S = 1


@pytest.fixture
def stack(stack_root: Path) -> Iterator[ApplianceStack]:
    config = shipped_config(free_port())
    config["vectordb"]["pgvector"]["connect_timeout_s"] = CONNECT_TIMEOUT_S
    running = ApplianceStack(stack_root, config)
    try:
        running.wait_healthy()
        yield running
    finally:
        running.stop()
        shutil.rmtree(stack_root, ignore_errors=True)


def _heartbeat(base: str) -> bool:
    try:
        return httpx.get(f"{base}/heartbeat", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _status(base: str) -> httpx.Response | None:
    try:
        return httpx.get(f"{base}/status", headers=signed_headers(), timeout=30)
    except httpx.HTTPError:
        return None


def test_an_app_started_while_postgres_is_stopped_stays_up_and_opens_once_postgres_is_back(
    stack: ApplianceStack,
) -> None:
    stack.stop_program("postgres")
    stack.stop_program("app")
    stack.start_program("app")
    wait_for(
        lambda: _heartbeat(stack.base_url) or stack.status()["app"][0] == "FATAL",
        120,
        "the app to answer /heartbeat (or end FATAL)",
        interval=0.5,
    )
    state, pid = stack.status()["app"]
    assert state == "RUNNING", f"the app is {state}:\n{stack.output()[-3000:]}"

    def second_attempt_failed() -> bool:
        response = _status(stack.base_url)
        detail = None if response is None else response.json()["loops"]["engine_opening"]["detail"]
        return detail == "for PostgreSQL (trying again in 10 s)"

    # well past startsecs: one process all along, not one restarted by supervisord
    wait_for(second_attempt_failed, 120, "the app's second opening attempt to fail", interval=0.5)
    assert stack.status()["app"] == ("RUNNING", pid)
    down = _status(stack.base_url)
    assert down is not None and down.status_code == 503
    assert down.json()["database"]["state"] == "unavailable"

    stack.start_program("postgres")

    def opened() -> bool:
        response = _status(stack.base_url)
        return response is not None and response.status_code == 200

    wait_for(opened, 120, "the engine to open once PostgreSQL is back", interval=0.5)
    assert stack.status()["app"] == ("RUNNING", pid)
    stack.wait_healthy()
