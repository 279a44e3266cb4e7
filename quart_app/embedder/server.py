"""Serves the embedder app with hypercorn until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging

from hypercorn.config import Config
from quart import Quart

from quart_app.app_server import serve_until_signal
from quart_app.embedder.app import embedder_scheduler

log = logging.getLogger(__name__)


# in-flight requests are answered 503 at the stop's start (fail_queued_requests): what is left to drain is a response
# being written; with the scheduler's second, the stop fits supervisord's stopwaitsecs=3
GRACEFUL_TIMEOUT_S = 1.0


async def serve_embedder(app: Quart, host: str, port: int, *, graceful_timeout_s: float = GRACEFUL_TIMEOUT_S) -> None:
    """Run until SIGTERM/SIGINT, then let in-flight requests finish for up to `graceful_timeout_s`."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout_s
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")

    async def fail_queued_requests() -> None:
        log.info("embedder stopping: failing queued requests with 503")
        # in-flight requests answer 503 now instead of being cut off by hypercorn's graceful timeout
        await embedder_scheduler(app).close()

    log.info("embedder listening on http://%s:%d", host, port)
    await serve_until_signal(app, config, asyncio.Event(), before_shutdown=fail_queued_requests)
    log.info("embedder stopped")
