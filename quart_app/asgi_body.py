"""Request bodies read from the server only as a route consumes them, so an unread body waits in the socket.

Quart reads every request body eagerly into memory. For the routes named here (PUT /loadSources) the middleware
hands the route a `BodyStream` in the ASGI scope instead and holds Quart's own `receive` back until the body has
been read: while the route waits (for a parser slot), hypercorn's bounded app queue fills and TCP flow control
stops the client, so a waiting upload costs a few hundred KiB, not its size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Any: Quart's asgi_app is typed with its own scope/event TypedDicts
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

BODY_STREAM_KEY = "ccb.body_stream"
# a refused request's body is read up to this size so the connection can serve the next request
DRAIN_LIMIT_BYTES = 1024 * 1024


class ClientDisconnectedError(Exception):
    """The client closed the connection before its request body was complete."""


class BodyStream:
    """One request's body as an async iterator of byte chunks, each read from the server when asked for."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._ended = asyncio.Event()
        self._disconnected = False

    @property
    def ended(self) -> bool:
        """The whole body has been read, or the client left."""
        return self._ended.is_set()

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        while not self._ended.is_set():
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._disconnected = True
                self._ended.set()
                raise ClientDisconnectedError("the client closed the connection before the request body was complete")
            if not message.get("more_body", False):
                self._ended.set()
            if chunk := message.get("body", b""):
                return bytes(chunk)
        raise StopAsyncIteration

    async def drain(self, limit_bytes: int = DRAIN_LIMIT_BYTES) -> None:
        """Read and drop what is left of the body, up to `limit_bytes` (beyond that the server closes the connection
        after the response)."""
        dropped = 0
        try:
            async for chunk in self:
                dropped += len(chunk)
                if dropped > limit_bytes:
                    return
        except ClientDisconnectedError:
            return

    async def receive_after_body(self) -> Message:
        """The app's own `receive`: held until the body has been read, then the server's (to see a disconnect)."""
        await self._ended.wait()
        if self._disconnected:
            return {"type": "http.disconnect"}
        return await self._receive()


def body_stream(scope: Mapping[str, object]) -> BodyStream:
    """The BodyStream StreamedBodyMiddleware put into this request's scope."""
    stream = scope.get(BODY_STREAM_KEY)
    if not isinstance(stream, BodyStream):
        raise RuntimeError("this route reads a streamed body, but StreamedBodyMiddleware does not wrap it")
    return stream


class StreamedBodyMiddleware:
    """For (method, path) in `routes`: the route reads the body from scope[BODY_STREAM_KEY]; Quart never buffers it."""

    def __init__(self, app: ASGIApp, routes: frozenset[tuple[str, str]]) -> None:
        self._app = app
        self._routes = routes

    def __repr__(self) -> str:
        return f"StreamedBodyMiddleware(routes={sorted(self._routes)})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope.get("method"), scope.get("path")) not in self._routes:
            await self._app(scope, receive, send)
            return
        stream = BodyStream(receive)
        scope[BODY_STREAM_KEY] = stream

        async def send_after_body(message: Message) -> None:
            if message["type"] == "http.response.start" and not stream.ended:
                # refused before the body was read (disabled, 413, 503): answering while it still arrives would close
                # the keep-alive connection under the client's next request
                await stream.drain()
            await send(message)

        await self._app(scope, stream.receive_after_body, send_after_body)
