"""Concurrent clients mixing PUT /loadSources, POST /query and POST /docSearch against a live server, the requests
they saw, and the figures of a run (throughput, latency percentiles per route, answers by status)."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from contract_kit import guzzle_multipart, signed_headers
from php_indexer import Document, corpus

ROUTES = ("/loadSources", "/query", "/docSearch")
# of every 10 requests: 2 uploads, 4 questions, 4 searches
MIX = ("/loadSources",) * 2 + ("/query",) * 4 + ("/docSearch",) * 4
QUESTIONS = (
    "What is the travel budget of the Berlin office?",
    "When is the roadmap review meeting?",
    "Which supplier sent the invoice?",
    "green label open model data code",
    "summary of the quarter report",
    "harbour island meadow",
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One request: its route, the HTTP status (None: no answer) and how long it took."""

    route: str
    status: int | None
    latency_ms: float
    error: str = ""


@dataclass
class LoadClient:
    """One client: the PHP app's indexer for its own files (never a file another client sends) and users asking."""

    number: int
    http: httpx.AsyncClient
    rng: random.Random
    users: Sequence[str]
    samples: list[Sample] = field(default_factory=list)
    _files: dict[str, Document] = field(default_factory=dict)
    _versions: int = 0

    async def run(self, deadline: float) -> None:
        # the first request of each client goes round the routes: even a short run sees every one
        route = ROUTES[self.number % len(ROUTES)]
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                status = await self._request(route)
                error = ""
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            self.samples.append(Sample(route, status, (time.perf_counter() - started) * 1000, error))
            route = self.rng.choice(MIX)

    async def _request(self, route: str) -> int:
        if route == "/loadSources":
            body, content_type = guzzle_multipart([document.part() for document in self._next_files()])
            headers = {**signed_headers(), "Content-Type": content_type}
            return (await self.http.put(route, content=body, headers=headers)).status_code
        user = self.rng.choice(self.users)
        question = {"userId": user, "query": self.rng.choice(QUESTIONS), "ctxLimit": self.rng.choice((3, 10, 20))}
        return (await self.http.post(route, json=question, headers=signed_headers(user))).status_code

    def _next_files(self) -> list[Document]:
        """1-5 files: new ones, changed versions of earlier ones, or the same ones again (an unchanged re-scan)."""
        batch: dict[str, Document] = {}
        for _ in range(self.rng.randint(1, 5)):
            choice = self.rng.random()
            if not self._files or choice < 0.5:
                self._versions += 1
                template = corpus(1, max_paragraphs=3, seed=self.number * 100_000 + self._versions)[0]
                source_id = f"files__default: {self.number}{len(self._files) + 1:05d}"
                document = Document(source_id, template.text, template.users, template.mimetype)
            else:
                earlier = self._files[self.rng.choice(sorted(self._files))]
                document = earlier
                if choice < 0.75:
                    self._versions += 1
                    text = f"{earlier.text}\n\nRevision {self._versions} of this file."
                    document = Document(earlier.source_id, text, earlier.users, earlier.mimetype)
            self._files[document.source_id] = batch[document.source_id] = document
        return list(batch.values())


async def run_load(base_url: str, clients: int, duration_s: float, seed: int = 20) -> list[Sample]:
    """`clients` clients for `duration_s`; requests still running at the end are awaited, not cut off."""
    rng = random.Random(seed)
    users = [f"user{n}" for n in range(8)]
    deadline = time.monotonic() + duration_s
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as http:
        group = [LoadClient(number + 1, http, random.Random(rng.random()), users) for number in range(clients)]
        await asyncio.gather(*(client.run(deadline) for client in group))
    return [sample for client in group for sample in client.samples]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..100); nan when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class LoadFigures:
    """What a run did: samples per route, the heartbeat prober's latencies and failures."""

    samples: list[Sample]
    heartbeat_ms: list[float]
    heartbeat_failures: list[str]
    duration_s: float

    @property
    def server_errors(self) -> list[Sample]:
        return [sample for sample in self.samples if sample.status is not None and sample.status >= 500]

    @property
    def unanswered(self) -> list[Sample]:
        return [sample for sample in self.samples if sample.status is None]

    def table(self) -> str:
        lines = [
            f"{'route':<14}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}  statuses"
        ]
        for route in (*ROUTES, "all"):
            chosen = [s for s in self.samples if route in ("all", s.route)]
            lines.append(self._row(route, [s.latency_ms for s in chosen], Counter(str(s.status) for s in chosen)))
        statuses = Counter({"200": len(self.heartbeat_ms), "failed": len(self.heartbeat_failures)})
        lines.append(self._row("/heartbeat", self.heartbeat_ms, +statuses) + "  (separate prober, fresh connections)")
        return "\n".join(lines)

    def _row(self, route: str, latencies: list[float], statuses: Counter[str]) -> str:
        figures = (percentile(latencies, q) for q in (50, 95, 99, 100))
        rate = len(latencies) / self.duration_s
        columns = "".join(f"{value:>9.0f}" for value in figures)
        answers = " ".join(f"{status}:{count}" for status, count in sorted(statuses.items()))
        return f"{route:<14}{len(latencies):>9}{rate:>8.1f}{columns}  {answers}"
