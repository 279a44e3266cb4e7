"""The isolation suite's driver: plays World steps against the app (a few requests in flight at once, loads that
outlive their step), checks every /query and /docSearch answer against the model, and at the end checks the store.

A hit is allowed when its user may read the source before or after the step the query ran in (the step's changes
are concurrent with the query) and the source is inside the query's scope. Every access change and delete is
acknowledged within its step (a 503 + cc-retry is sent again, as the PHP app does), so a reader removed in an
earlier step must never be seen again, whatever loads of that source were still waiting or parsing.

Each step may start one held load: its `test/block` part parses until the next step's requests are in flight, so
that step's changes arrive while the load of the same sources is parsing, and further loads wait at the gate.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract_kit import SourcePart, guzzle_multipart, signed_headers
from isolation_world import LoadPart, Request, World
from quart.typing import TestClientProtocol as Client

from quart_app.store import Database

MARKER = re.compile(r"qzv[a-z]+")
# tries of an access change answered 503 + cc-retry (each one waited ingest.access_wait_s in the app)
CHANGE_ATTEMPTS = 20
# how long the next step's requests run before the held parse is released (how often the race is hit, not a check)
HOLD_S = 0.03


@dataclass
class Figures:
    """What a run did and found."""

    seed: int
    ops: int = 0
    steps: int = 0
    queries: int = 0
    hits_checked: int = 0
    queries_with_hits: int = 0
    # queries whose user could read an indexed source in scope before and after their step
    queries_answerable: int = 0
    changes_503: int = 0
    loads_503: int = 0
    loads_to_retry: int = 0
    held_loads: int = 0
    seconds: float = 0.0
    by_kind: Counter[str] = field(default_factory=Counter)
    leaks: list[str] = field(default_factory=list)
    # what the store lacks after everything was delivered (a lost access change or load)
    lost: list[str] = field(default_factory=list)

    def summary(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.by_kind.items()))
        return (
            f"isolation seed {self.seed}: {self.ops} ops in {self.steps} steps, {self.seconds:.1f} s; "
            f"{self.queries} queries ({self.queries_answerable} answerable, {self.queries_with_hits} with hits), "
            f"{self.hits_checked} hits checked, "
            f"{len(self.leaks)} leaks, {len(self.lost)} lost; {self.held_loads} loads held mid-parse; "
            f"503 + cc-retry: {self.changes_503} changes (sent again), {self.loads_503} loads; "
            f"{self.loads_to_retry} sources in sources_to_retry; ops: {kinds}"
        )


class IsolationRun:
    """`await IsolationRun(client, db, seed, gates).run(ops)` -> Figures (leaks and losses listed, not raised)."""

    def __init__(self, client: Client, db: Database, seed: int, gates: Path, users: int = 8) -> None:
        self.client = client
        self.db = db
        self.gates = gates
        self._gate_names = itertools.count(1)
        self._held: list[Path] = []
        self.rng = random.Random(seed)
        self.world = World(self.rng, users)
        self.figures = Figures(seed)
        self._background: set[asyncio.Task[None]] = set()

    async def run(self, ops: int) -> Figures:
        started = time.monotonic()
        while self.figures.ops < ops:
            await self._step()
        await self._settle()
        await self._check_store()
        self.figures.seconds = time.monotonic() - started
        return self.figures

    async def _step(self) -> None:
        rng, world = self.rng, self.world
        before = world.readers()
        plan = world.plan_step(
            changes=rng.randint(1, 3),
            loads=rng.randint(0, 2),
            queries=rng.randint(1, 3),
            slow_share=0.2,
            duplicate_share=0.15,
        )
        after = world.readers()
        step = self.figures.steps
        held, self._held = self._held, []
        for n, load in enumerate(plan.slow_loads):
            gate = self._new_gate() if n == 0 else None
            task = asyncio.create_task(self._load(load, gate))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        await asyncio.gather(
            *(self._change(change) for change in plan.changes),
            *(self._load(load) for load in plan.loads),
            *(self._query(query, before, after, step) for query in plan.queries),
            self._release(held),
        )
        for request in [*plan.changes, *plan.loads, *plan.slow_loads, *plan.queries]:
            self.figures.by_kind[request.kind] += 1
        self.figures.ops += len(plan.changes) + len(plan.loads) + len(plan.slow_loads) + len(plan.queries)
        self.figures.steps += 1

    def _new_gate(self) -> Path:
        gate = self.gates / f"gate{next(self._gate_names)}"
        gate.mkdir(parents=True)
        gate.chmod(0o777)  # the parser writes `started` as ccb_parser
        self._held.append(gate)
        self.figures.held_loads += 1
        return gate

    @staticmethod
    async def _release(gates: list[Path]) -> None:
        if gates:
            await asyncio.sleep(HOLD_S)
            for gate in gates:
                (gate / "release").touch()

    async def _send(self, request: Request, gate: Path | None = None) -> tuple[int, Any, dict[str, str]]:
        if request.parts:
            parts = [_part(p, self.world.sources[p.source_id].marker) for p in request.parts]
            if gate is not None:  # the first part parses until the gate is released
                first = parts[0]
                held = SourcePart(first.source_id, f"{gate}\n".encode() + first.content, first.user_ids, first.title,
                                  "test/block", first.modified, first.provider)  # fmt: skip
                parts[0] = held
            body, content_type = guzzle_multipart(parts)
            headers = {**signed_headers(), "Content-Type": content_type}
            response = await self.client.put(request.path, data=body, headers=headers)
        else:
            user = request.body.get("userId", "") if request.body and request.path in ("/query", "/docSearch") else ""
            response = await self.client.post(request.path, json=request.body, headers=signed_headers(user))
        return response.status_code, await response.get_json(), dict(response.headers)

    async def _change(self, request: Request) -> None:
        for _ in range(CHANGE_ATTEMPTS):
            status, body, headers = await self._send(request)
            if status == 200:
                return
            if status != 503 or headers.get("cc-retry") != "true":
                raise AssertionError(f"seed {self.figures.seed}: {request.path} {request.body} got {status} {body}")
            self.figures.changes_503 += 1
        raise AssertionError(f"seed {self.figures.seed}: {request.path} {request.body} still busy: {body}")

    async def _load(self, request: Request, gate: Path | None = None) -> None:
        status, body, headers = await self._send(request, gate)
        if status == 503 and headers.get("cc-retry") == "true":
            self.figures.loads_503 += 1
            return  # the PHP app queues the sources again; the model still lists them as pending
        if status != 200:
            raise AssertionError(f"seed {self.figures.seed}: /loadSources answered {status} {body}")
        loaded = set(body["loaded_sources"])
        self.figures.loads_to_retry += len(body["sources_to_retry"])
        for part in request.parts:
            if part.source_id in loaded:
                self.world.loaded(part)

    async def _query(
        self, request: Request, before: dict[str, frozenset[str]], after: dict[str, frozenset[str]], step: int
    ) -> None:
        assert request.body is not None
        status, body, _ = await self._send(request)
        hits: list[str] = []
        if request.kind == "docSearch":
            assert status == 200, body
            hits = [hit["source_id"] for hit in body]
        elif status == 200:
            hits = [*body["sources"], *(self.world.by_marker.get(m, m) for m in MARKER.findall(body["output"]))]
        else:
            assert status == 400 and "No documents retrieved" in body["error"], body
        self.figures.queries += 1
        self.figures.queries_with_hits += bool(hits)
        user, scope_type = request.body["userId"], request.body.get("scopeType")
        scope: list[str] = request.body.get("scopeList") or []

        def in_scope(source_id: str) -> bool:
            source = self.world.sources.get(source_id)
            return source is not None and (
                scope_type is None
                or (scope_type == "provider" and source.provider in scope)
                or (scope_type == "source" and source_id in scope)
            )

        self.figures.queries_answerable += any(
            user in readers and user in after.get(sid, ()) and in_scope(sid) and self.world.sources[sid].indexed_version
            for sid, readers in before.items()
        )
        for source_id in hits:
            self.figures.hits_checked += 1
            readers = before.get(source_id, frozenset()) | after.get(source_id, frozenset())
            if user not in readers or not in_scope(source_id):
                self.figures.leaks.append(
                    f"step {step} {request.path} {request.body}: {user} got {source_id}"
                    f" (readers before {sorted(before.get(source_id, ()))}, after {sorted(after.get(source_id, ()))})"
                )

    async def _settle(self) -> None:
        """Let the slow loads finish, then send what the PHP app still has queued until nothing is pending."""
        await self._release(self._held)
        while self._background:
            await asyncio.gather(*self._background)
        for _ in range(30):
            pending = self.world.loads_for_pending(5)
            if not pending:
                return
            for request in pending:
                await self._load(request)
        raise AssertionError(f"seed {self.figures.seed}: sources still not loaded after 30 rounds")

    async def _check_store(self) -> None:
        """Once everything is delivered the store holds exactly what Nextcloud says: nothing lost, nothing extra."""
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT source_id, provider, state FROM documents")
            documents = {row[0]: (row[1], row[2]) for row in await cur.fetchall()}
            cur = await conn.execute("SELECT user_id, source_id FROM access")
            access = {(row[0], row[1]) for row in await cur.fetchall()}
        truth = self.world.readers()
        expected_documents = {sid: (self.world.sources[sid].provider, "indexed") for sid in truth}
        expected_access = {(user, sid) for sid, readers in truth.items() for user in readers}
        for source_id in sorted(set(documents) - set(expected_documents)):
            self.figures.leaks.append(f"after the run: {source_id} is stored, but Nextcloud no longer has it")
        for user, source_id in sorted(access - expected_access):
            self.figures.leaks.append(f"after the run: {user} may read {source_id} in the store, not in Nextcloud")
        for source_id in sorted(set(expected_documents) - set(documents)):
            self.figures.lost.append(f"after the run: {source_id} is not stored, though Nextcloud has it")
        for user, source_id in sorted(expected_access - access):
            self.figures.lost.append(f"after the run: {user} may not read {source_id} in the store, as in Nextcloud")
        for source_id, stored in sorted(documents.items()):
            if source_id in expected_documents and stored != expected_documents[source_id]:
                self.figures.lost.append(f"after the run: {source_id} is stored as {stored}")


def _part(part: LoadPart, marker: str) -> SourcePart:
    return SourcePart(
        part.source_id,
        part.text.encode(),
        user_ids=part.readers,
        title=f"notes/{marker}.txt",
        modified=1_733_000_000 + part.version,
        provider=part.provider,
    )
