"""Whether the pull loops may run: the app is enabled, the PHP app serves its queues (5.4+) and the database answers.

A PHP app <= 5.3 has no queue routes (404); the loops then back off quietly: one log line, a new look every
`pull.recheck_unavailable_s`, or at once when the PHP app next asks for its statistics (an upgrade to 5.4 is then seen
as soon as the admin looks at them, not minutes later). The probe is `GET …/queues/actions?n=0`, which claims
nothing. While PostgreSQL is away nothing is claimed: a claimed item that cannot be stored stays locked in Nextcloud
for 24 h.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from appliance.config import PullConfig
from quart_app.background_loops import LoopHandle, backoff
from quart_app.nextcloud import NextcloudAuthError, NextcloudClient, NextcloudError, NextcloudNotFoundError
from quart_app.store import Database

log = logging.getLogger(__name__)

OCS_APP = "/ocs/v2.php/apps/context_chat"
DOCUMENTS_PATH = f"{OCS_APP}/queues/documents"
DOCUMENTS_ACK_PATH = f"{OCS_APP}/queues/documents/"
ACTIONS_PATH = f"{OCS_APP}/queues/actions"
ACTIONS_ACK_PATH = f"{OCS_APP}/queues/actions/"
FILE_PATH = f"{OCS_APP}/files/{{file_id}}"
RESOLVE_SCOPE_PATH = f"{OCS_APP}/resolve_scope_list"
ENRICH_SOURCES_PATH = f"{OCS_APP}/enrich_sources"


# the database is looked at again at least this often while it is away: the backoff for Nextcloud's errors (up to
# 120 s) would leave a question asked during an outage waiting that long after PostgreSQL is back
DATABASE_RECHECK_MAX_S = 5.0

PUSH_MODE_REASON = (
    "push mode: the context_chat PHP app has no queues (<= 5.3 pushes files to us, or it is disabled in Nextcloud)"
)


def _unavailable_reason(error: NextcloudError | None) -> str:
    """What `ccb status` says: a 404 is push mode (Nextcloud's router text would tell an admin nothing)."""
    if isinstance(error, NextcloudAuthError):
        return f"Nextcloud refused our AppAPI credentials on the queue routes: {error}"
    return PUSH_MODE_REASON


class PullGate:
    """Shared by the pollers; `wait_open()` returns when they may poll, False when the app is stopping."""

    def __init__(
        self, nextcloud: NextcloudClient, config: PullConfig, enabled: Callable[[], bool], db: Database
    ) -> None:
        self._nc = nextcloud
        self._db = db
        self._config = config
        self._enabled = enabled
        self.changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._nextcloud_wait = asyncio.Lock()
        self._nextcloud_outages = 0
        self.available: bool | None = None
        self._checked_at = 0.0
        self.reason = "not checked yet"

    def enabled_changed(self) -> None:
        """PUT /enabled changed the flag: waiting loops look again now, and the PHP app is probed afresh."""
        self._look_now()

    def php_app_called(self) -> None:
        """The PHP app called us (its statistics): if it had no queues, it may have been upgraded since; look now."""
        if self.available is False:
            self._look_now()

    def _look_now(self) -> None:
        # not 0.0: the monotonic clock starts at boot, and a host up for less than recheck_unavailable_s is common
        self._checked_at = -math.inf
        self.changed.set()

    def mark_unavailable(self, error: NextcloudError) -> None:
        """A queue route answered 404/412: stop polling until the next re-check."""
        self._set(False, error)

    def _set(self, available: bool, error: NextcloudError | None = None) -> None:
        if available != self.available:
            if available:
                log.info("the context_chat PHP app serves its queues (5.4+): pulling documents, actions and tasks")
            elif isinstance(error, NextcloudAuthError):
                log.warning(
                    "Nextcloud refused our AppAPI credentials on the queue routes (%s); pull mode paused", error
                )
            else:
                log.info(
                    "the context_chat PHP app has no queues (<= 5.3 pushes to us, or it is disabled); pull mode idle,"
                    " next look in %g s or when it next asks for its statistics",
                    self._config.recheck_unavailable_s,
                )
        self.available = available
        self._checked_at = time.monotonic()
        self.reason = "PHP app serves its queues" if available else _unavailable_reason(error)

    async def _probe(self) -> None:
        async with self._lock:
            due = time.monotonic() - self._checked_at >= self._config.recheck_unavailable_s
            if self.available or (self.available is False and not due):
                return
            try:
                await self._nc.ocs("GET", ACTIONS_PATH, params={"n": 0})
            except (NextcloudNotFoundError, NextcloudAuthError) as exc:
                self._set(False, exc)
                return
            self._set(True)

    async def wait_open(self, handle: LoopHandle) -> bool:
        """Block until enabled, pull available and the database reachable; transient probe errors back off like any
        other poll error."""
        failures = 0
        while not handle.stopping.is_set():
            self.changed.clear()
            if not self._enabled():
                handle.status.set("waiting", "the app is disabled in AppAPI")
                await handle.sleep(self._config.recheck_unavailable_s, self.changed)
                continue
            try:
                await self._probe()
            except NextcloudError as exc:
                failures += 1
                handle.status.set("backing_off", f"cannot reach Nextcloud: {exc}")
                wait = backoff(self._config.error_backoff_s, self._config.error_backoff_max_s, failures)
                await handle.sleep(exc.wait_before_retry(wait))
                continue
            if self.available:
                outage = await self.wait_for_store(handle)
                if outage is None:
                    return False
                if outage:
                    continue  # the flags may have changed during a long outage
                return True
            handle.status.set("idle", self.reason)
            remaining = self._config.recheck_unavailable_s - (time.monotonic() - self._checked_at)
            await handle.sleep(max(remaining, 0.05), self.changed)
        return False

    async def wait_for_nextcloud(self, handle: LoopHandle) -> bool | None:
        """After a transient failure of one call: wait while Nextcloud itself is away (down, maintenance mode, 5xx from
        its proxy). True after an outage, False if it answers (the failure was the call's own), None on stop."""
        outages = self._nextcloud_outages
        async with self._nextcloud_wait:
            if self._nextcloud_outages != outages:
                return None if handle.stopping.is_set() else True  # another download waited it out meanwhile
            failures = 0
            while not handle.stopping.is_set():
                try:
                    await self._nc.ocs("GET", ACTIONS_PATH, params={"n": 0})
                except NextcloudError as exc:
                    if exc.transient:
                        failures += 1
                        handle.status.set("backing_off", f"Nextcloud is away ({exc}); the batch waits for it")
                        handle.status.count("nextcloud_waits")
                        wait = backoff(self._config.error_backoff_s, self._config.error_backoff_max_s, failures)
                        await handle.sleep(exc.wait_before_retry(wait))
                        continue
                if failures:
                    self._nextcloud_outages += 1
                    log.info("Nextcloud answers again after %d failed look(s); the batch goes on", failures)
                return failures > 0
            return None

    async def wait_for_store(self, handle: LoopHandle) -> bool | None:
        """Wait while the database is unreachable: True after an outage, False if there was none, None on stop."""
        failures = 0
        # the pool's flag is cheap; only when it says "away" is the database asked again
        while not self._db.available and not await self._db.reachable():
            if handle.stopping.is_set():
                return None
            failures += 1
            handle.status.set("backing_off", "the database is unreachable; nothing is claimed until it is back")
            handle.status.count("database_waits")
            wait = backoff(self._config.error_backoff_s, self._config.error_backoff_max_s, failures)
            await handle.sleep(min(wait, DATABASE_RECHECK_MAX_S))
        return None if handle.stopping.is_set() else failures > 0
