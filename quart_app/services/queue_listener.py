"""The embedding worker's LISTEN loop: a NOTIFY from another process's ingest wakes the idle embedding loops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

from quart_app.background_loops import LoopHandle
from quart_app.store.database import CONNECT_TIMEOUT_S
from quart_app.store.document_store import QUEUE_CHANNEL

logger = logging.getLogger(__name__)


async def listen_for_queued_chunks(
    handle: LoopHandle,
    *,
    dsn: str,
    wake: asyncio.Event,
    listening: asyncio.Event,
    retry_wait: Callable[[int], float],
) -> None:
    """Set `wake` on each NOTIFY; `listening` is set while the LISTEN connection is up, `retry_wait(failures)`
    paces reconnects. In-process ingest wakes the worker directly."""
    handle.status.set("running", "listening for queued chunks")
    failures = 0
    while not handle.stopping.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(
                dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            ) as conn:
                await conn.execute(f"LISTEN {QUEUE_CHANNEL}")
                listening.set()
                if failures:
                    wake.set()  # NOTIFYs sent while the connection was down are lost: look at the queue
                failures = 0
                handle.status.set("running", "listening for queued chunks")
                while not handle.stopping.is_set():
                    async for _ in conn.notifies(timeout=1.0, stop_after=1):
                        wake.set()
        except psycopg.Error as exc:
            listening.clear()
            failures += 1
            handle.status.set("backing_off", "LISTEN connection lost; polling")
            if failures == 1:
                logger.warning("embedding worker: LISTEN connection lost (%s); polling until it is back", exc)
            await handle.sleep(retry_wait(failures))
