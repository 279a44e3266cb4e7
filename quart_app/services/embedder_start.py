"""The engine's start-up questions to a llama.cpp or external embedding service (its model, its dimension, the model
its answers name), asked while that service may still be loading its model: supervisord starts the local embedder
and the app together, and a container of an external service often starts beside ours.

As the embedding worker does (`embedder_outage`), a service that does not take calls yet is waited for at INFO during
`EMBEDDER_STARTUP_GRACE_S` from the first question: a refused or unavailable call is asked again after a capped
backoff, and one line says so. Past the grace, its error is the caller's as before (the engine does not open, or the
model probe is left to the worker). An error that is not an outage (401, a bad answer) is raised at once. `on_wait` is
told each refusal's cause, and None once the service answers: the app serves meanwhile and says what it waits for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from quart_app.background_loops import backoff
from quart_app.runtimes.errors import EmbeddingServiceError
from quart_app.services import embedder_outage

log = logging.getLogger(__name__)

T = TypeVar("T")
# asked again after 0.5 s, 1 s, 2 s, … at most every 5 s: the local embedder loads its model in seconds
RETRY_BASE_S = 0.5
RETRY_MAX_S = 5.0


class EmbedderStartWait:
    """`await wait.ask(client.info)`: the call's result, once the service takes calls or the grace has passed."""

    def __init__(self, grace_s: float | None = None, on_wait: Callable[[str | None], None] | None = None) -> None:
        grace_s = embedder_outage.EMBEDDER_STARTUP_GRACE_S if grace_s is None else grace_s
        self._started = time.monotonic()
        self._grace_ends = self._started + grace_s
        self._refused = 0
        self._on_wait = on_wait or (lambda _cause: None)

    async def ask(self, call: Callable[[], Awaitable[T]]) -> T:
        while True:
            try:
                result = await call()
            except EmbeddingServiceError as exc:
                if not exc.unavailable:
                    raise
                self._refused += 1
                self._on_wait(exc.message)
                wait = backoff(RETRY_BASE_S, RETRY_MAX_S, self._refused)
                if time.monotonic() + wait > self._grace_ends:
                    raise
                if self._refused == 1:
                    log.info("waiting for the embedding service to start (%s); next try in %g s", exc.message, wait)
                await asyncio.sleep(wait)
                continue
            if self._refused:
                log.info(
                    "the embedding service answered after %.1f s and %d refused calls",
                    time.monotonic() - self._started,
                    self._refused,
                )
                self._refused = 0
                self._on_wait(None)
            return result
