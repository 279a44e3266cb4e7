"""An httpx transport that records each request's timeouts and how long it took on the wire: what the tests of the
readable-check wait (ReadableCheckWait, push and pull mode) compare."""

from __future__ import annotations

import time

import httpx


class TimeoutRecordingTransport(httpx.AsyncHTTPTransport):
    """Sends as httpx does; `timeouts` and `on_the_wire_s` grow by one per request, in the order they were sent."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[dict[str, float]] = []
        self.on_the_wire_s: list[float] = []

    @property
    def read_timeouts(self) -> list[float]:
        """Each request's read timeout: how long it could wait for Nextcloud's answer."""
        return [timeouts["read"] for timeouts in self.timeouts]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.timeouts.append(request.extensions["timeout"])
        started = time.monotonic()
        try:
            return await super().handle_async_request(request)
        finally:
            self.on_the_wire_s.append(time.monotonic() - started)
