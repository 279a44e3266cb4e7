"""Quart's HTTP connection, with the request's own tasks cancelled when the server cancels the request.

Quart (0.22) serves a request as two tasks, the route's handler and a receiver of the client's messages, and waits
for the first to end. When hypercorn cancels the request (its graceful timeout at a stop), that wait is cancelled
but the two tasks are not: an answer went on generating for a client that was gone, kept the LLM busy, and held the
appliance's stop past supervisord's 60 s (then SIGKILL, and Docker's 10 s as well).
"""

from __future__ import annotations

import asyncio

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from quart.asgi import ASGIHTTPConnection
from quart.utils import cancel_tasks, raise_task_exceptions


class RequestScopedConnection(ASGIHTTPConnection):
    """A request's handler and receiver end with the request: cancelled with it, and awaited before it ends."""

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        request = self._create_request_from_scope(send)
        receiver_task = asyncio.ensure_future(self.handle_messages(request, receive))
        handler_task = asyncio.ensure_future(self.handle_request(request, send))
        tasks = {handler_task, receiver_task}
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            # the handler's own cleanup (a generation thread stopping at its next token) runs before the request ends
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        await cancel_tasks(pending)
        raise_task_exceptions(done)
