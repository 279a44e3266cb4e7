"""Quiet repeats of psycopg_pool's connection-failure warnings: while the database is known to be away, and in the
seconds before the app finds out."""

from __future__ import annotations

import logging
import time

from quart_app.store.database_outage import DatabaseOutage, DatabaseReachability

# psycopg_pool's lines for a failed (re)connection: every request during an outage starts another round of them
POOL_FAILURE_LINES = ("error connecting in %r: %s", "reconnection attempt in pool %r failed after %s sec")
# distinct pool failures remembered per outage; past this many, new ones are logged as they come
POOL_FAILURES_KEPT = 64
# before the outage is known (a request waits OUTAGE_PROBE_AFTER_S before asking PostgreSQL), the same failure again
# within this long is a repeat: every waiting request's reconnection logged it, 16 lines within a second
BEFORE_OUTAGE_REPEAT_S = 10.0


class PoolFailureRepeats(logging.Filter):
    """On psycopg_pool's logger: while the database is known to be away (the pool's own warning said so), a connection
    failure of its pool already logged in this outage is dropped; before that, one logged in the last
    BEFORE_OUTAGE_REPEAT_S. A new cause still shows once."""

    def __init__(self, reachability: DatabaseReachability, pool_name: str) -> None:
        super().__init__()
        self._reachability = reachability
        self._pool_name = pool_name
        self._outage: DatabaseOutage | None = None
        self._seen: set[str] = set()
        # failures logged while no outage was known, each with when (monotonic)
        self._recent: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        outage = self._reachability.outage
        ours = isinstance(record.args, tuple) and record.args[:1] == (self._pool_name,)
        if record.msg not in POOL_FAILURE_LINES or not ours:
            return True
        message = record.getMessage()
        if outage is None:
            return self._first_recently(message)
        # a new reason keeps the outage's start: the same outage, its seen failures kept
        if self._outage is None or outage.since != self._outage.since:
            self._outage, self._seen = outage, set(self._recent)
        if message in self._seen:
            return False
        if len(self._seen) < POOL_FAILURES_KEPT:
            self._seen.add(message)
        return True

    def _first_recently(self, message: str) -> bool:
        """True unless the same failure was let through in the last BEFORE_OUTAGE_REPEAT_S."""
        now = time.monotonic()
        self._recent = {seen: at for seen, at in self._recent.items() if now - at < BEFORE_OUTAGE_REPEAT_S}
        if message in self._recent:
            return False
        self._recent[message] = now
        return True
