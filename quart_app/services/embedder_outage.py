"""Whether the embedding service takes requests, as the embedding worker last found it (GET /status shows it).

An outage (an EmbeddingServiceError with `unavailable`: unreachable, timed out, 408/429/502/503/504) is a state of
the service, not of the chunks sent: the worker gives the batch back without counting an attempt and asks again
after a capped exponential backoff, so embedding resumes by itself at most `outage_backoff_max_s` after the service
is back. Chunks that an older version failed for an outage are queued again when the worker starts.

A service that has never answered since the worker was created is waited for at INFO for `EMBEDDER_STARTUP_GRACE_S`:
the local embedder loads its model meanwhile, and a slow start is not a fault. Past the grace, or once a service that
answered goes away, the outage is a WARNING.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from quart_app.background_loops import backoff
from quart_app.runtimes.embedding_client import UNAVAILABLE_ERROR_PATTERN
from quart_app.store import Database
from quart_app.store.queue_store import requeue_failed

log = logging.getLogger(__name__)
_MAX_ERROR_CHARS = 500
# the embedder took 14 s to load its model on a busy 2-core box; several times that is a fault, not a slow start
EMBEDDER_STARTUP_GRACE_S = 60.0


class EmbedderOutage:
    """The current outage (since when, last error, failed calls) and when the service may be asked again."""

    def __init__(
        self, backoff_base_s: float, backoff_max_s: float, startup_grace_s: float = EMBEDDER_STARTUP_GRACE_S
    ) -> None:
        self._base_s = backoff_base_s
        self._max_s = backoff_max_s
        self._startup_ends = time.monotonic() + startup_grace_s
        self._ever_answered = False
        # whether this outage was logged as a WARNING (a start-up wait is INFO until the grace ends)
        self._warned = False
        # wall-clock time of the first failed call of this outage; None while the service answers
        self.since: float | None = None
        self.last_error = ""
        self.failed_calls = 0
        self._retry_at = 0.0

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def wait_s(self) -> float:
        """Seconds to wait before the next call to the service (0 when there is no outage or the wait is over)."""
        return max(0.0, self._retry_at - time.monotonic()) if self.ongoing else 0.0

    def failed(self, error: str) -> float:
        """Record a call the service could not take; returns the seconds until it is asked again."""
        self.failed_calls += 1
        self.last_error = error[:_MAX_ERROR_CHARS]
        wait = backoff(self._base_s, self._max_s, self.failed_calls)
        self._retry_at = time.monotonic() + wait
        starting = not self._ever_answered and time.monotonic() < self._startup_ends
        if self.since is None:
            self.since = time.time()
        if starting and self.failed_calls == 1:
            log.info("waiting for the embedding service to start (%s); next try in %g s", self.last_error, wait)
        elif not starting and not self._warned:
            self._warned = True
            log.warning(
                "embedding service unavailable%s: %s; embedding paused (queued chunks keep their attempts), next try"
                " in %g s",
                "" if self._ever_answered else " since the app started",
                self.last_error,
                wait,
            )
        else:
            log.info(
                "embedding service still unavailable after %d calls over %.0f s: %s; next try in %g s",
                self.failed_calls,
                time.time() - self.since,
                self.last_error,
                wait,
            )
        return wait

    def answered(self) -> None:
        """Record that the service answered (with vectors, or with an error about the texts): the outage is over."""
        self._ever_answered = True
        if self.since is None:
            return
        log.info(
            "embedding service is back after %.1f s and %d failed calls; embedding resumes",
            time.time() - self.since,
            self.failed_calls,
        )
        self.since = None
        self.last_error = ""
        self.failed_calls = 0
        self._retry_at = 0.0
        self._warned = False

    def as_json(self) -> dict[str, Any]:
        return {
            "state": "unavailable" if self.ongoing else "available",
            "unavailable_since": None if self.since is None else round(self.since, 3),
            "last_error": self.last_error or None,
            "failed_calls": self.failed_calls,
            "next_try_in_s": round(self.wait_s(), 1) if self.ongoing else None,
        }


async def requeue_outage_failures(db: Database) -> int:
    """Queue again the chunks an older version failed for an outage (today an outage never fails a chunk)."""
    async with db.connection() as conn:
        count = await requeue_failed(conn, UNAVAILABLE_ERROR_PATTERN)
    if count:
        log.info("queued again %d chunks that failed while the embedding service was unavailable", count)
    return count
