"""Retry-After on 429/503 (Nextcloud's rate limits, a reverse proxy in front of it) paces the pollers."""

from __future__ import annotations

import time
from collections import deque

import pytest
from async_wait import until
from nextcloud_pull_fake import FakePullNextcloud, RecordedRequest
from pull_kit import FAST_PULL, PullApp

from quart_app.app_settings import AppSettings
from quart_app.nextcloud import NextcloudRateLimitedError, NextcloudServerError
from quart_app.nextcloud.errors import LONGEST_RETRY_AFTER_S

DOCUMENTS = "/ocs/v2.php/apps/context_chat/queues/documents"
NEXT_TASK = "/ocs/v2.php/taskprocessing/tasks_provider/next"


@pytest.mark.parametrize(
    ("route", "path", "status"),
    [("documents", DOCUMENTS, 503), ("next_task", NEXT_TASK, 429)],
    ids=["documents-queue-503", "tasks-provider-next-429"],
)
async def test_a_poll_answered_with_retry_after_waits_that_long_before_the_next(
    pull_settings: AppSettings, nextcloud: FakePullNextcloud, route: str, path: str, status: int
) -> None:
    polls: list[float] = []

    def note_poll(request: RecordedRequest) -> None:
        if request.path.rstrip("/") == path and request.method == "GET":
            polls.append(time.monotonic())

    nextcloud.on_request = note_poll
    nextcloud.fault_retry_after[status] = "1"
    # the first poll of the route gets the fault: the loops only poll once AppAPI enables the app
    nextcloud.endpoint_faults[route] = deque([status])
    async with PullApp(pull_settings, nextcloud) as app:
        await app.enable()
        await until(lambda: len(polls) >= 2, what=f"the poll after the {status}")
    # before: the next poll came after our own backoff (FAST_PULL: 0.05 s), asking again while told to wait 1 s
    assert polls[1] - polls[0] >= 0.9, f"polled again after {polls[1] - polls[0]:.2f} s"


def test_retry_after_is_honoured_within_bounds_and_never_shortens_our_backoff() -> None:
    busy = NextcloudServerError("503", 503, retry_after_s=7.0)
    assert busy.wait_before_retry(0.05) == 7.0
    assert busy.wait_before_retry(20.0) == 20.0  # our own backoff is longer
    assert busy.wait_before_retry(0.05, longest_s=2.0) == 2.0  # a file download holds its batch: its own bound
    hours = NextcloudRateLimitedError("429", retry_after_s=36_000.0)
    assert hours.wait_before_retry(FAST_PULL["error_backoff_s"]) == LONGEST_RETRY_AFTER_S == 300.0
    assert NextcloudServerError("500", 500).wait_before_retry(0.4) == 0.4  # no header: our backoff
