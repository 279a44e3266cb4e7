"""Per-source ordering of ingests against access changes and deletes, within this process and across replicas.

A load carries the readers Nextcloud listed when it built the request; an access change or delete that arrives
after it must win. So:

* an ingest holds its sources (exclusive) and their provider and readers (shared) from claim to commit; an access
  change or delete takes the keys it touches exclusively, waiting (bounded) for the ingests holding them;
* a load also remembers when it arrived (a ticket, taken before it waits for a parser slot or downloads its files):
  a source whose keys changed since then carries a stale reader list and is not written (the caller retries it).

This process orders its own loads and changes here first; with a ClaimStore (every engine has one) the same holds
are then taken in the database, so app replicas sharing it never ingest one source at once, and a change on one
replica makes a load that arrived on another stale (store/claim_store.py: advisory locks, a shared clock).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Literal, Protocol

import psycopg

from quart_app.services.errors import OrderWaitTimeoutError, SourceBusyError
from quart_app.store import StoreError
from quart_app.store.claim_store import CHANGES_KEPT_S, ClaimBusyError, ClaimStore, ClaimWaitTimeoutError, HeldClaim

log = logging.getLogger(__name__)

# what a key names: one source, every source of a provider, every source a user may read
KeyKind = Literal["source", "provider", "user"]
OrderKey = tuple[KeyKind, str]
# source ids listed in a snapshot, at most
SNAPSHOT_SAMPLE = 20


class LoadedSource(Protocol):
    """What a claim needs to know about a source a load brings (IncomingSource, a pull queue item)."""

    @property
    def source_id(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def user_ids(self) -> Sequence[str]: ...


def source_key(source_id: str) -> OrderKey:
    return ("source", source_id.strip())


def provider_key(provider: str) -> OrderKey:
    return ("provider", provider.strip())


def bare_provider_key(provider: str) -> OrderKey:
    """The provider's bare id (the part after `app__`), which a PHP app before 5.5 names in delete_provider_id."""
    return ("provider", provider.strip().split("__", 1)[-1])


def user_key(user_id: str) -> OrderKey:
    return ("user", user_id.strip())


@dataclass(frozen=True, slots=True)
class Ticket:
    """When a load arrived: on this process's clock, on the database's shared one (None without a ClaimStore)."""

    local: int
    shared: int | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class IngestClaim:
    """Sources an ingest holds, and those it may not write because their readers changed since it arrived."""

    held: frozenset[str]
    stale: tuple[str, ...]


@dataclass(slots=True)
class _Waiter:
    keys: frozenset[OrderKey]
    granted: asyncio.Future[None]


@dataclass(slots=True)
class _Holds:
    shared: Counter[OrderKey] = field(default_factory=Counter)
    exclusive: set[OrderKey] = field(default_factory=set)

    def free(self, key: OrderKey) -> bool:
        return key not in self.exclusive and self.shared[key] == 0


class SourceOrder:
    """Claims in this process are check-and-take with no await in between, so they are atomic on the event loop;
    the database's are all-or-nothing in one statement (ClaimStore.try_hold)."""

    def __init__(self, wait_s: float = 30.0, shared: ClaimStore | None = None) -> None:
        self.wait_s = wait_s
        self._shared = shared
        self._holds = _Holds()
        self._waiters: list[_Waiter] = []
        self._clock = itertools.count(1)
        self._open_tickets: set[int] = set()
        # key -> clock value of its last change; only kept while a ticket older than that change is open
        self._changed: dict[OrderKey, int] = {}

    def snapshot(self) -> dict[str, object]:
        """For GET /status: open loads, sources held (by ingests or changes) and changes waiting for them."""
        held = sorted(name for kind, name in self._holds.exclusive if kind == "source")
        return {
            "loads_open": len(self._open_tickets),
            "sources_held": len(held),
            "sources_held_sample": held[:SNAPSHOT_SAMPLE],
            "changes_waiting": len(self._waiters),
        }

    @asynccontextmanager
    async def arrival(self) -> AsyncIterator[Ticket]:
        """A load arrived: changes made after this, here or on another replica, are detected when it claims."""
        with self._arrival_here() as local:
            yield Ticket(local, None if self._shared is None else await self._shared.stamp())

    @asynccontextmanager
    async def claim(self, sources: Sequence[LoadedSource], arrival: Ticket) -> AsyncIterator[IngestClaim]:
        """Hold the fresh sources for an ingest, or raise SourceBusyError without holding any.

        A source is busy while another ingest (here or on another replica) holds it or an access change waits
        for it or for its provider or one of its readers (waiting changes go first, so a stream of loads cannot
        starve a delete).
        """
        with self._claim_here(sources, arrival) as here:
            if self._shared is None or arrival.shared is None or not here.held:
                yield here
                return
            fresh = list({s.source_id: s for s in sources if s.source_id in here.held}.values())
            async with AsyncExitStack() as stack:
                held = await self._try_hold_shared(fresh, stack)
                stale = await self._stale_shared(held, fresh, arrival)
                if stale:
                    await held.release([source_key(source_id) for source_id in stale])
                written = here.held - stale
                try:
                    yield IngestClaim(written, (*here.stale, *sorted(stale)))
                finally:
                    # before the locks go: a load that arrived earlier on any replica must not overwrite this
                    await _record_change(held, [source_key(source_id) for source_id in written])

    @asynccontextmanager
    async def change(self, keys: Iterable[OrderKey]) -> AsyncIterator[None]:
        """Hold `keys` exclusively while an access change or delete commits; waits up to `wait_s` for ingests
        here, then for those on other replicas.

        Raises OrderWaitTimeoutError (retry later) when the ingests holding them do not finish in time.
        """
        wanted = frozenset(keys)
        deadline = time.monotonic() + self.wait_s
        async with self._change_here(wanted):
            if self._shared is None:
                yield
                return
            try:
                async with self._shared.wait_hold(sorted(wanted), max(deadline - time.monotonic(), 0.001)) as held:
                    try:
                        yield
                    finally:
                        await _record_change(held, sorted(wanted))
            except ClaimWaitTimeoutError:
                names = sorted(f"{kind} {name!r}" for kind, name in wanted)
                raise OrderWaitTimeoutError(names, self.wait_s) from None

    async def _try_hold_shared(self, fresh: list[LoadedSource], stack: AsyncExitStack) -> HeldClaim:
        assert self._shared is not None
        exclusive = [source_key(s.source_id) for s in fresh]
        shared = list(dict.fromkeys(key for s in fresh for key in _load_keys(s)[1:]))
        try:
            return await stack.enter_async_context(self._shared.try_hold(exclusive, shared, self.wait_s))
        except ClaimBusyError as exc:
            taken = set(exc.keys)
            raise SourceBusyError(sorted(s.source_id for s in fresh if taken.intersection(_load_keys(s)))) from None

    @staticmethod
    async def _stale_shared(held: HeldClaim, fresh: list[LoadedSource], arrival: Ticket) -> set[str]:
        """Sources whose keys changed on any replica since the load arrived (all, for a load so old that stamps of
        changes since may have been pruned)."""
        assert arrival.shared is not None, "claim takes the database's holds only for a ticket with a shared stamp"
        if time.monotonic() - arrival.at > CHANGES_KEPT_S / 2:
            return {s.source_id for s in fresh}
        changed = await held.changed_since([key for s in fresh for key in _load_keys(s)], arrival.shared)
        return {s.source_id for s in fresh if changed.intersection(_load_keys(s))}

    @contextmanager
    def _arrival_here(self) -> Iterator[int]:
        ticket = next(self._clock)
        self._open_tickets.add(ticket)
        try:
            yield ticket
        finally:
            self._open_tickets.discard(ticket)
            if not self._open_tickets:
                self._changed.clear()
            elif ticket < min(self._open_tickets):
                # the oldest open load ended: changes no open load can be older than are forgotten
                oldest = min(self._open_tickets)
                self._changed = {key: stamp for key, stamp in self._changed.items() if stamp > oldest}

    @contextmanager
    def _claim_here(self, sources: Sequence[LoadedSource], arrival: Ticket) -> Iterator[IngestClaim]:
        stale = list(dict.fromkeys(s.source_id for s in sources if self._changed_since(_load_keys(s), arrival)))
        fresh = [s for s in sources if s.source_id not in stale]
        wanted = self._wanted()
        busy = sorted({s.source_id for s in fresh if self._busy_for_ingest(s, wanted)})
        if busy:
            raise SourceBusyError(busy)
        exclusive = {source_key(s.source_id) for s in fresh}
        shared = {key for s in fresh for key in _load_keys(s)} - exclusive
        self._holds.exclusive |= exclusive
        self._holds.shared.update(shared)
        wrote = True
        try:
            yield IngestClaim(frozenset(s.source_id for s in fresh), tuple(stale))
        except SourceBusyError:
            # busy on another replica: nothing written, and this load's next try must not find its own sources stale
            wrote = False
            raise
        finally:
            self._holds.exclusive -= exclusive
            self._holds.shared.subtract(shared)
            self._holds.shared = +self._holds.shared
            if wrote:
                # a load that arrived earlier and still waits must not overwrite what this one wrote
                self._record_change(exclusive)
            self._grant_waiters()

    @asynccontextmanager
    async def _change_here(self, wanted: frozenset[OrderKey]) -> AsyncIterator[None]:
        waiter = _Waiter(wanted, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        self._grant_waiters()
        try:
            async with asyncio.timeout(self.wait_s):
                await waiter.granted
        except TimeoutError:
            if not _granted(waiter):  # granted in the same instant the wait ran out: go ahead
                self._give_up(waiter)
                blocking = self._blocking(wanted) or wanted
                names = sorted(f"{kind} {name!r}" for kind, name in blocking)
                raise OrderWaitTimeoutError(names, self.wait_s) from None
        except BaseException:
            if _granted(waiter):
                self._release(wanted)
            else:
                self._give_up(waiter)
            raise
        try:
            yield
        finally:
            self._release(wanted)

    def _give_up(self, waiter: _Waiter) -> None:
        self._waiters.remove(waiter)
        self._grant_waiters()  # later changes it was blocking may go now

    def _wanted(self) -> set[OrderKey]:
        """Keys that waiting changes want."""
        return {key for waiter in self._waiters for key in waiter.keys}

    def _busy_for_ingest(self, source: LoadedSource, wanted: set[OrderKey]) -> bool:
        own, *others = _load_keys(source)
        if own in wanted or not self._holds.free(own):
            return True
        return any(key in wanted or key in self._holds.exclusive for key in others)

    def _blocking(self, keys: frozenset[OrderKey]) -> set[OrderKey]:
        wanted = self._wanted()
        return {key for key in keys if key in wanted or not self._holds.free(key)}

    def _release(self, keys: frozenset[OrderKey]) -> None:
        self._holds.exclusive -= keys
        self._record_change(keys)
        self._grant_waiters()

    def _grant_waiters(self) -> None:
        """Grant waiting changes in arrival order; a later one never jumps an earlier one on a shared key."""
        blocked: set[OrderKey] = set()
        for waiter in list(self._waiters):
            if waiter.granted.done():
                continue  # cancelled; its owner removes it
            if waiter.keys.isdisjoint(blocked) and all(self._holds.free(k) for k in waiter.keys):
                self._waiters.remove(waiter)
                self._holds.exclusive |= waiter.keys
                waiter.granted.set_result(None)
            else:
                blocked |= waiter.keys

    def _record_change(self, keys: Iterable[OrderKey]) -> None:
        if not self._open_tickets:
            return  # no load is waiting whose reader list this could make stale
        stamp = next(self._clock)
        for key in keys:
            self._changed[key] = stamp

    def _changed_since(self, keys: Iterable[OrderKey], ticket: Ticket) -> bool:
        return any(self._changed.get(key, 0) > ticket.local for key in keys)


async def _record_change(held: HeldClaim, keys: Sequence[OrderKey]) -> None:
    """Stamp `keys` in the database; a claim whose connection died is logged (its locks are gone already)."""
    try:
        await held.record_change(keys)
    except (psycopg.Error, StoreError) as exc:
        log.warning("claim connection lost before %d change stamp(s) were written: %s", len(keys), type(exc).__name__)


def _granted(waiter: _Waiter) -> bool:
    return waiter.granted.done() and not waiter.granted.cancelled()


def _load_keys(source: LoadedSource) -> list[OrderKey]:
    """The source first, then what an access change may name instead: its provider (by key and by bare id) and its
    readers."""
    providers = dict.fromkeys([provider_key(source.provider), bare_provider_key(source.provider)])
    return [source_key(source.source_id), *providers, *map(user_key, source.user_ids)]
