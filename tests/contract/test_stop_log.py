"""A stop that cuts off a request in flight logs no error: asyncio 3.11's stream server reported each connection task
hypercorn cancels at a stop as "Exception in callback StreamReaderProtocol.connection_made…" with a traceback, which
made every stop under load look like a crash in the app's log. Real hypercorn over a real socket."""

from __future__ import annotations

import asyncio
import logging

import pytest
from local_ports import connect_when_listening, free_port
from quart import Quart

from quart_app.app_server import quiet_cancelled_connections, serve_until_signal, server_config
from quart_app.asgi_connection import RequestScopedConnection


async def test_a_request_cut_off_by_the_stop_logs_no_asyncio_error(caplog: pytest.LogCaptureFixture) -> None:
    app = Quart(__name__)
    app.asgi_http_class = RequestScopedConnection
    started = asyncio.Event()

    @app.get("/slow")
    async def slow() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    port = free_port()
    config = server_config(f"127.0.0.1:{port}")
    config.graceful_timeout = 0.1
    config.accesslog = None
    stop = asyncio.Event()
    server = asyncio.create_task(serve_until_signal(app, config, stop))
    client = await connect_when_listening(port)
    client.sendall(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await asyncio.wait_for(started.wait(), 10)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        stop.set()
        await asyncio.wait_for(server, 10)
        await asyncio.sleep(0)  # one loop turn: the ended connection tasks' done callbacks run
    client.close()
    assert [r.getMessage()[:60] for r in caplog.records if r.name == "asyncio"] == []


async def test_other_loop_errors_are_still_logged(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        quiet_cancelled_connections(loop, {"message": "Exception in callback something", "exception": ValueError("x")})
        quiet_cancelled_connections(
            loop, {"message": "Task was destroyed but it is pending!", "exception": asyncio.CancelledError()}
        )
    assert [r.getMessage() for r in caplog.records] == [
        "Exception in callback something",
        "Task was destroyed but it is pending!",
    ]
