"""Whether PostgreSQL was last found reachable, and since when and why not.

One record per app, the only one of an outage: shared by the Database of each attempt to open the engine and by the
engine's pool once open, whose `available` (a request's short wait, its "for N s") and log filter read it. GET /status
and the routes read it also while no engine is open (PostgreSQL never came up), and an outage that outlasts several
opening attempts keeps the time it began. A pool's open() clears it, so a failed attempt leaves no outage to the next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class DatabaseOutage:
    """The database as unreachable: since when (wall clock, for GET /status) and the failure that told."""

    since: float
    reason: str


class DatabaseReachability:
    """The outage under way, None while PostgreSQL answers."""

    def __init__(self) -> None:
        self.outage: DatabaseOutage | None = None

    def unreachable(self, reason: str) -> None:
        """A connection was refused or broke: an outage begins now, or the one under way goes on with this reason."""
        since = time.time() if self.outage is None else self.outage.since
        self.outage = DatabaseOutage(since, reason)

    def reachable(self) -> None:
        self.outage = None
