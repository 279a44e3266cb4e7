"""The enabled flag shared by app replicas through the database.

PUT /enabled reaches one replica; it writes the flag here too, and every replica polls it, taking over a change
made elsewhere (its guard, its pull loops and its state file follow, as after its own PUT /enabled).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psycopg

from quart_app.app_state import EnabledState
from quart_app.background_loops import LoopHandle, loop_detail
from quart_app.store import Database, StoreError
from quart_app.store.app_state_store import read_enabled, write_enabled

log = logging.getLogger(__name__)

# how soon a replica follows PUT /enabled sent to another one
POLL_S = 2.0

EnabledListener = Callable[[bool], Awaitable[None]]


class SharedEnabled:
    """Run by BackgroundLoops as `enabled_sync`; `publish` is an enabled listener of this replica."""

    LOOP_NAME = "enabled_sync"

    def __init__(
        self, db: Database, state: EnabledState, listeners: list[EnabledListener], *, started_with: bool
    ) -> None:
        """`started_with`: this replica's flag when the app started, before any PUT /enabled it served (the engine,
        and so this, may open after one: AppAPI enables an updated app while its migrations still run)."""
        self._db = db
        self._state = state
        self._listeners = listeners
        # what this replica last knew the database to hold: a different value there was set by another replica
        self._seen: bool | None = None
        # this replica's own flag as last shared (or as it started with): a different one is a PUT /enabled here
        # whose publish has not run yet, newer than anything stored
        self._shared_local = started_with
        # a publish and a sync never interleave: each reads and writes the flag as one step
        self._lock = asyncio.Lock()

    async def publish(self, enabled: bool) -> None:
        """After this replica's PUT /enabled; if the database is away, the loop writes it once it is back."""
        async with self._lock:
            try:
                async with self._db.connection() as conn:
                    await write_enabled(conn, enabled)
                self._seen = self._shared_local = enabled
            except (psycopg.Error, StoreError) as exc:
                log.warning("enabled=%s not shared with other replicas yet (%s); retrying", enabled, type(exc).__name__)

    async def run(self, handle: LoopHandle) -> None:
        handle.status.set("running", f"following the shared enabled flag every {POLL_S:g} s")
        while not handle.stopping.is_set():
            try:
                await self.sync()
            except (psycopg.Error, StoreError) as exc:
                handle.status.set("waiting", loop_detail(exc, "database away: "))
            await handle.sleep(POLL_S)

    async def sync(self) -> None:
        """Take over a value another replica wrote, or write ours where none (or a stale one of ours) is stored, or
        where a PUT /enabled here changed it since it was last shared."""
        async with self._lock, self._db.connection() as conn:
            stored = await read_enabled(conn)
            local = self._state.enabled
            changed_here = local != self._shared_local
            if stored is not None and stored != self._seen and stored != local and not changed_here:
                log.info("another replica set enabled=%s; following it", stored)
                self._seen = self._shared_local = stored
                self._state.set(stored)
                for listener in self._listeners:
                    if listener != self.publish:
                        await listener(stored)
            elif stored != local:
                await write_enabled(conn, local)
                self._seen = self._shared_local = local
            else:
                self._seen = self._shared_local = stored
