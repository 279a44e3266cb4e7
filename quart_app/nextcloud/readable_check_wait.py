"""The wait one question gives Nextcloud's checks of which candidate files the user still reads, shared by its fill
rounds (AnswerService's FILL_ROUNDS): push mode's WebDAV SEARCH and pull mode's enrich_sources.

Each round's call gets what the earlier calls left of nextcloud.readable_check_timeout_s, so a Nextcloud that hangs
costs a question one timeout, not one per round. Only the time spent waiting on Nextcloud counts: the retrieval
between rounds is ours, and the timeout's message says Nextcloud did not answer within it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from quart_app.nextcloud.errors import NextcloudTimeoutError

# the config key of the wait, named when it runs out
TIMEOUT_SETTING = "nextcloud.readable_check_timeout_s"

T = TypeVar("T")


class ReadableCheckWait:
    """One question's wait for its readability checks; `call` gives each check what is left of `total_s`."""

    def __init__(self, total_s: float) -> None:
        self.total_s = total_s
        self._waited_s = 0.0

    @property
    def spent(self) -> bool:
        """Nothing is left of the wait: a further call would fail unsent."""
        return self._waited_s >= self.total_s

    async def call(self, what: str, check: Callable[[float], Awaitable[T]]) -> T:
        """`check(left_s)`, given what earlier calls left; NextcloudTimeoutError naming `what` (method and path)
        and the setting when the wait runs out, during the call or before it (then no call is made)."""
        left_s = self.total_s - self._waited_s
        if left_s <= 0:
            raise self._ran_out(what)
        started = time.monotonic()
        try:
            # the client's timeout bounds each read, not the call: an answer trickled out would outlast the wait
            async with asyncio.timeout(left_s):
                return await check(left_s)
        except (NextcloudTimeoutError, TimeoutError):
            # a call timed out after what was left: the wait is over, however close the clock's count came
            self._waited_s = self.total_s
            raise self._ran_out(what) from None
        finally:
            self._waited_s += time.monotonic() - started

    def _ran_out(self, what: str) -> NextcloudTimeoutError:
        return NextcloudTimeoutError(
            f"{what}: Nextcloud did not answer within {self.total_s:g} s, the config's {TIMEOUT_SETTING}"
        )
