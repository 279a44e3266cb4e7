"""A request body that stops arriving is answered 408 and its connection closed (a pure ASGI middleware).

hypercorn's own `read_timeout` cannot do this: it times every socket read, including the ones hypercorn makes while
the app works on a complete request, so it would cut a /query or a queued /loadSources that takes longer. Here only
the waits for more of an unfinished body are timed: a slow upload that keeps sending is never cut, a stalled one
frees its connection and its ingest slot. Slow request headers are hypercorn's keep-alive timeout's job.
"""

from __future__ import annotations

import asyncio
import json
import logging

from quart_app.asgi_body import ASGIApp, Message, Receive, Scope, Send
from quart_app.request_ids import logged_path

log = logging.getLogger(__name__)


class BodyTimeoutMiddleware:
    """Wraps the app's ASGI callable; `timeout_s` is the longest silence allowed inside a request body."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self._app = app
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"BodyTimeoutMiddleware(timeout_s={self._timeout_s:g})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        body_complete = False
        responded = False
        stalled = False

        async def timed_receive() -> Message:
            nonlocal body_complete, responded, stalled
            if body_complete or stalled:
                return await receive()  # after the body only a disconnect can come: no time limit
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancel Quart sends this receive
                # when the handler has finished, leaving the request waiting for the timeout
                async with asyncio.timeout(self._timeout_s):
                    message = await receive()
            except TimeoutError:
                stalled = True
                log.warning(
                    "%s %r: the request body stopped arriving for %g s; answered 408 and closed",
                    scope.get("method"),
                    logged_path(scope),
                    self._timeout_s,
                )
                if not responded:
                    responded = True
                    await _send_408(send, self._timeout_s)
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_complete = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal responded
            if stalled:
                return  # the 408 is the answer; the app only learns of the disconnect
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        await self._app(scope, timed_receive, guarded_send)


async def _send_408(send: Send, timeout_s: float) -> None:
    message = f"the request body stopped arriving (nothing for {timeout_s:g} s, http.body_timeout_s); send it again"
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": body})
