"""Serves the app with hypercorn until SIGTERM or SIGINT, as supervisord runs it:

    python -m quart_app.app_server --bind HOST:PORT|unix:PATH [--keep-alive SECONDS]

hypercorn's own command line looks at a stop signal only once the app's start-up (before_serving) has ended, and
ends a start-up after 60 s. Opening the engine waits for PostgreSQL and applies the schema migrations, which take
minutes per million chunks, or wait for another replica's: such an app was ended at 60 s, rolled its migration
back and started it again, for ever. Here start-up has no time limit, and a stop signal ends it (Lifecycle's
`stop_requested`, which before_serving watches).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app
from quart import Quart

from appliance.json_logging import exit_without_finalizing
from quart_app.daemon_thread import still_running
from quart_app.stop_deadline import DRAIN_RESERVE_S

log = logging.getLogger(__name__)

# start-up ends when the engine is open or a stop arrives; a limit would only cut a migration off
START_UP_LIMIT_S = 30 * 24 * 3600.0


def server_config(bind: str, keep_alive_s: float | None = None) -> Config:
    """hypercorn's settings for the app: one bind (host:port or unix:path) and its keep-alive timeout."""
    config = Config()
    config.bind = [bind]
    if keep_alive_s is not None:
        config.keep_alive_timeout = keep_alive_s
    config.startup_timeout = START_UP_LIMIT_S
    return config


async def serve_until_signal(
    app: Quart,
    config: Config,
    stop: asyncio.Event,
    *,
    sockets: Sockets | None = None,
    before_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT sets `stop` (start-up may watch it too), then run `before_shutdown` and let
    in-flight requests finish for up to the config's graceful timeout."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.set_exception_handler(quiet_cancelled_connections)

    async def shutdown_trigger() -> None:
        await stop.wait()
        if before_shutdown is not None:
            await before_shutdown()

    await worker_serve(
        wrap_app(app, config.wsgi_max_body_size, "asgi"), config, sockets=sockets, shutdown_trigger=shutdown_trigger
    )


def quiet_cancelled_connections(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio 3.11's stream server reports each connection task cancelled (hypercorn cancels the requests still in
    flight at a stop) as "Exception in callback StreamReaderProtocol.connection_made…", with a traceback: every stop
    under load looked like a crash in the log. That cancel is the stop's own; anything else is reported as before."""
    message = str(context.get("message", ""))
    if (
        isinstance(context.get("exception"), asyncio.CancelledError)
        and "StreamReaderProtocol.connection_made" in message
    ):
        return
    loop.default_exception_handler(context)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m quart_app.app_server", description=__doc__.split("\n")[0])
    parser.add_argument("--bind", required=True, help="HOST:PORT (IPv6 host in brackets) or unix:PATH")
    parser.add_argument("--keep-alive", type=float, default=None, help="seconds an idle connection stays open")
    return parser.parse_args(argv)


def serve_app(app: Quart, config: Config, sockets: Sockets | None = None) -> int:
    """Serve the app (built by create_app) until a stop signal; the process then ends without waiting for a model
    load or download the stop cut off (quart_app/daemon_thread.py), or for what its stop's deadline abandoned."""
    from quart_app.lifecycle import STATE_EXTENSION, Lifecycle

    state: Lifecycle = app.extensions[STATE_EXTENSION]

    async def begin_stop() -> None:
        state.begin_stop()
        # the requests in flight finish until the drain's end, not for hypercorn's own 3 s on top of the rest
        config.graceful_timeout = state.stop_deadline.left(DRAIN_RESERVE_S)

    async def serve() -> None:
        await serve_until_signal(app, config, state.stop_requested, sockets=sockets, before_shutdown=begin_stop)
        leave_after_stop()

    asyncio.run(serve())
    return 0


def leave_after_stop() -> NoReturn:
    """End the process once after_serving has closed what a stop must close. asyncio.run's teardown would wait for
    the tasks the stop's deadline abandoned and for threads still inside native code (an LLM step, a model load or
    download), past supervisord's SIGKILL; the kernel ends them, and their connections, with the process."""
    others = (task for task in asyncio.all_tasks() if task is not asyncio.current_task())
    left = still_running() + sorted(getattr(task.get_coro(), "__qualname__", task.get_name()) for task in others)
    if left:
        log.warning("stopped without waiting for %s", ", ".join(left))
    exit_without_finalizing()


def main(argv: list[str] | None = None) -> int:
    from quart_app import create_app

    args = parse_args(argv)
    config = server_config(args.bind, args.keep_alive)
    # bound before start-up, as hypercorn's command line does: a port another program holds fails at once
    try:
        sockets = config.create_sockets()
    except (OSError, OverflowError) as exc:
        print(f"app: {bind_failure(args.bind, exc)}", file=sys.stderr)
        return 2
    return serve_app(create_app(), config, sockets)


def bind_failure(bind: str, exc: OSError | OverflowError) -> str:
    """Why the app cannot listen on `bind` and which setting to change."""
    reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).rstrip(".")
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        reason += " (another program uses it, perhaps another appliance on this machine)"
    if bind.startswith("unix:"):
        fix = "set HP_EXAPP_SOCK to a path the app may create"
    elif isinstance(exc, OSError) and exc.errno in (errno.EADDRNOTAVAIL, socket.EAI_NONAME):
        fix = "set APP_HOST to an address of this machine"
    else:
        fix = "set APP_PORT to a free port"
    return f"cannot listen on {bind}: {reason}; {fix}"


if __name__ == "__main__":
    sys.exit(main())
