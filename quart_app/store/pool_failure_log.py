"""Quiet repeats of psycopg_pool's connection-failure warnings while the database is known to be away."""

from __future__ import annotations

import logging

from quart_app.store.database_outage import DatabaseOutage, DatabaseReachability

# psycopg_pool's lines for a failed (re)connection: every request during an outage starts another round of them
POOL_FAILURE_LINES = ("error connecting in %r: %s", "reconnection attempt in pool %r failed after %s sec")
# distinct pool failures remembered per outage; past this many, new ones are logged as they come
POOL_FAILURES_KEPT = 64


class PoolFailureRepeats(logging.Filter):
    """On psycopg_pool's logger: while the database is known to be away (the pool's own warning said so), a connection
    failure of its pool already logged in this outage is dropped; a new cause still shows once."""

    def __init__(self, reachability: DatabaseReachability, pool_name: str) -> None:
        super().__init__()
        self._reachability = reachability
        self._pool_name = pool_name
        self._outage: DatabaseOutage | None = None
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        outage = self._reachability.outage
        ours = isinstance(record.args, tuple) and record.args[:1] == (self._pool_name,)
        if outage is None or record.msg not in POOL_FAILURE_LINES or not ours:
            return True
        # a new reason keeps the outage's start: the same outage, its seen failures kept
        if self._outage is None or outage.since != self._outage.since:
            self._outage, self._seen = outage, set()
        message = record.getMessage()
        if message in self._seen:
            return False
        if len(self._seen) < POOL_FAILURES_KEPT:
            self._seen.add(message)
        return True
