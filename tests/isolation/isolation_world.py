"""The model of the isolation suite: what Nextcloud knows (who may read which source), changed step by step, and
the requests the PHP app sends for each change.

A step's changes are planned so that every order of its requests ends in the same state: a source, a user or a
provider is touched by at most one access change or delete per step, and the step's loads carry the readers as
they are at the end of the step. Loads started in earlier steps (still waiting or parsing) carry the readers of
their own step: those are the races the backend must order.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PROVIDERS = {"files__default": 24, "notes__x": 10, "mail__x": 9, "deck__x": 7}
FILLER = [
    "budget",
    "travel",
    "label",
    "hiking",
    "meeting",
    "invoice",
    "garden",
    "recipe",
    "contract",
    "sprint",
    "harbour",
    "violin",
    "glacier",
    "lantern",
    "orchard",
    "pepper",
    "quartz",
    "saddle",
    "thunder",
    "velvet",
    "walnut",
    "yacht",
    "zenith",
    "bakery",
    "canyon",
    "dolphin",
    "ember",
    "falcon",
]


def marker_word(n: int) -> str:
    """A word no other text contains, so a hit names its source unambiguously ('qzv' + letters)."""
    letters = ""
    n += 26 * 26
    while n:
        n, rest = divmod(n, 26)
        letters = chr(ord("a") + rest) + letters
    return f"qzv{letters}"


@dataclass
class Source:
    """One source as Nextcloud sees it; no readers means it does not exist (never created, or deleted)."""

    source_id: str
    provider: str
    marker: str
    readers: set[str] = field(default_factory=set)
    version: int = 0
    # the newest version the backend answered "loaded" for since the source was last created
    indexed_version: int = 0

    @property
    def exists(self) -> bool:
        return bool(self.readers)

    @property
    def needs_index(self) -> bool:
        return self.exists and self.indexed_version < self.version

    def text(self, version: int, rng: random.Random) -> str:
        words = " ".join(rng.choice(FILLER) for _ in range(24))
        return f"Note {self.marker} version {version}: {words}. The {self.marker} summary ends here."


@dataclass(frozen=True)
class LoadPart:
    """One source of a /loadSources request, as it was when the request was built."""

    source_id: str
    provider: str
    readers: tuple[str, ...]
    version: int
    text: str


@dataclass(frozen=True)
class Request:
    """One request of the PHP app: a JSON POST, or a /loadSources upload (`parts`)."""

    kind: str
    path: str
    body: dict[str, Any] | None = None
    parts: tuple[LoadPart, ...] = ()


@dataclass
class StepPlan:
    changes: list[Request]
    loads: list[Request]
    # loads not awaited in this step: they finish while later steps change the same sources
    slow_loads: list[Request]
    queries: list[Request]


class World:
    """Nextcloud's users, providers and sources; `plan_step` changes them and says what to send."""

    def __init__(self, rng: random.Random, users: int = 8) -> None:
        self.rng = rng
        self.users = [f"user{n}" for n in range(users)]
        self.sources: dict[str, Source] = {}
        for provider, count in PROVIDERS.items():
            for n in range(1, count + 1):
                source_id = f"{provider}: {n}"
                self.sources[source_id] = Source(source_id, provider, marker_word(len(self.sources)))
        self.by_marker = {s.marker: s.source_id for s in self.sources.values()}

    def readers(self) -> dict[str, frozenset[str]]:
        """Who may read each existing source now."""
        return {sid: frozenset(s.readers) for sid, s in self.sources.items() if s.exists}

    def plan_step(self, changes: int, loads: int, queries: int, slow_share: float, duplicate_share: float) -> StepPlan:
        touched_sources: set[str] = set()
        touched_users: set[str] = set()
        plan = StepPlan([], [], [], [])
        makers: list[tuple[float, Callable[[set[str], set[str]], Request | bool | None]]] = [
            (14, self._create),
            (8, self._edit),
            (14, self._share),
            (14, self._unshare),
            (7, self._declare),
            (6, self._delete_sources),
            (4, self._provider_access),
            (3, self._delete_user),
            (1, self._delete_provider),
        ]
        weights = [weight for weight, _ in makers]
        for _ in range(changes):
            make = self.rng.choices([m for _, m in makers], weights)[0]
            made = make(touched_sources, touched_users)
            if isinstance(made, Request):
                plan.changes.append(made)
        for _ in range(loads):
            load = self._load()
            if load is None:
                break
            if self.rng.random() < slow_share:
                plan.slow_loads.append(load)
            else:
                plan.loads.append(load)
                if self.rng.random() < duplicate_share:
                    plan.loads.append(load)  # the same source ingested twice at once
        plan.queries = [self._query() for _ in range(queries)]
        return plan

    def loads_for_pending(self, batch: int) -> list[Request]:
        """What the PHP app still has queued: every existing source the backend has not loaded at its version."""
        pending = [s.source_id for s in self.sources.values() if s.needs_index]
        return [self._load_request(pending[i : i + batch]) for i in range(0, len(pending), batch)]

    def loaded(self, part: LoadPart) -> None:
        source = self.sources[part.source_id]
        if source.exists:
            source.indexed_version = max(source.indexed_version, part.version)

    # --- changes: each returns the request to send, True (changed, nothing to send), or None (no candidate) ---

    def _pick(self, touched: set[str], *, exists: bool) -> Source | None:
        candidates = [s for sid, s in self.sources.items() if sid not in touched and s.exists == exists]
        return self.rng.choice(candidates) if candidates else None

    def _some_users(self, low: int, high: int, exclude: set[str]) -> set[str]:
        pool = [u for u in self.users if u not in exclude]
        return set(self.rng.sample(pool, min(len(pool), self.rng.randint(low, high))))

    def _create(self, touched: set[str], users: set[str]) -> bool | None:
        source = self._pick(touched, exists=False)
        if source is None:
            return None
        readers = self._some_users(1, 3, users)
        if not readers:
            return None
        touched.add(source.source_id)
        users |= readers
        source.readers, source.version, source.indexed_version = readers, source.version + 1, 0
        return True

    def _edit(self, touched: set[str], users: set[str]) -> bool | None:
        source = self._pick(touched, exists=True)
        if source is None:
            return None
        touched.add(source.source_id)
        source.version += 1
        return True

    def _share(self, touched: set[str], users: set[str]) -> Request | None:
        source = self._pick(touched, exists=True)
        added = self._some_users(1, 2, users | (source.readers if source else set()))
        if source is None or not added:
            return None
        touched.add(source.source_id)
        users |= added
        source.readers |= added
        body = {"op": "allow", "userIds": sorted(added), "sourceId": source.source_id}
        return Request("share", "/updateAccess", body)

    def _unshare(self, touched: set[str], users: set[str]) -> Request | None:
        source = self._pick(touched, exists=True)
        removable = sorted(source.readers - users) if source else []
        if source is None or not removable:
            return None
        user = self.rng.choice(removable)
        touched.add(source.source_id)
        users.add(user)
        self._remove_readers(source, {user})  # the last reader gone: the backend drops the document too
        return Request("unshare", "/updateAccess", {"op": "deny", "userIds": [user], "sourceId": source.source_id})

    def _declare(self, touched: set[str], users: set[str]) -> Request | None:
        source = self._pick(touched, exists=True)
        if source is None or source.readers & users:
            return None
        readers = self._some_users(1, 4, users)
        if not readers:
            return None
        touched.add(source.source_id)
        users |= readers | source.readers
        source.readers = readers
        body = {"userIds": sorted(readers), "sourceId": source.source_id}
        return Request("declare", "/updateAccessDeclarative", body)

    def _delete_sources(self, touched: set[str], users: set[str]) -> Request | None:
        chosen = [self._pick(touched, exists=True) for _ in range(self.rng.randint(1, 3))]
        ids = sorted({s.source_id for s in chosen if s is not None})
        if not ids:
            return None
        for source_id in ids:
            touched.add(source_id)
            self._remove_readers(self.sources[source_id], set(self.sources[source_id].readers))
        return Request("delete sources", "/deleteSources", {"sourceIds": ids})

    def _provider_access(self, touched: set[str], users: set[str]) -> Request | None:
        provider = self.rng.choice(list(PROVIDERS))
        members = [s for s in self.sources.values() if s.provider == provider]
        chosen = self._some_users(1, 2, users)
        if any(s.source_id in touched for s in members) or not chosen:
            return None
        op = self.rng.choice(["allow", "deny"])
        touched.update(s.source_id for s in members)
        users |= chosen
        for source in members:
            if op == "allow" and source.exists:
                source.readers |= chosen
            elif op == "deny":
                self._remove_readers(source, chosen)
        body = {"op": op, "userIds": sorted(chosen), "providerId": provider}
        return Request(f"provider {op}", "/updateAccessProvider", body)

    def _delete_user(self, touched: set[str], users: set[str]) -> Request | None:
        user = self.rng.choice(self.users)
        theirs = [s for s in self.sources.values() if user in s.readers]
        if user in users or any(s.source_id in touched for s in theirs):
            return None
        users.add(user)
        for source in theirs:
            touched.add(source.source_id)
            self._remove_readers(source, {user})
        return Request("delete user", "/deleteUser", {"userId": user})

    def _delete_provider(self, touched: set[str], users: set[str]) -> Request | None:
        provider = self.rng.choice(list(PROVIDERS))
        members = [s for s in self.sources.values() if s.provider == provider]
        if any(s.source_id in touched for s in members):
            return None
        for source in members:
            touched.add(source.source_id)
            self._remove_readers(source, set(source.readers))
        return Request("delete provider", "/deleteProvider", {"providerKey": provider})

    @staticmethod
    def _remove_readers(source: Source, users: set[str]) -> None:
        source.readers -= users
        if not source.exists:
            source.indexed_version = 0

    # --- loads and queries ---

    def _load(self) -> Request | None:
        pending = [s.source_id for s in self.sources.values() if s.needs_index]
        existing = [sid for sid, s in self.sources.items() if s.exists]
        if not existing:
            return None
        # mostly what the PHP app has queued; sometimes an unchanged source again (only its readers are merged)
        pool = pending if pending and self.rng.random() < 0.85 else existing
        return self._load_request(sorted(set(self.rng.sample(pool, min(len(pool), self.rng.randint(1, 3))))))

    def _load_request(self, source_ids: list[str]) -> Request:
        parts = []
        for source_id in source_ids:
            source = self.sources[source_id]
            text = source.text(source.version, random.Random(f"{source_id}/{source.version}"))
            parts.append(LoadPart(source_id, source.provider, tuple(sorted(source.readers)), source.version, text))
        return Request("load", "/loadSources", parts=tuple(parts))

    def _query(self) -> Request:
        rng = self.rng
        user = rng.choice([*self.users, "user-without-files"])
        words = [self.sources[sid].marker for sid in rng.sample(list(self.sources), rng.randint(1, 3))]
        body: dict[str, Any] = {"userId": user, "query": " ".join([*words, rng.choice(FILLER)])}
        scope = rng.choices(["none", "provider", "source"], [2, 1, 1])[0]
        if scope == "provider":
            body |= {"scopeType": "provider", "scopeList": rng.sample(list(PROVIDERS), rng.randint(1, 2))}
        elif scope == "source":
            body |= {"scopeType": "source", "scopeList": rng.sample(list(self.sources), rng.randint(1, 8))}
        if rng.random() < 0.5:
            return Request("docSearch", "/docSearch", body | {"ctxLimit": rng.choice([5, 10, 20])})
        return Request("query", "/query", body)
