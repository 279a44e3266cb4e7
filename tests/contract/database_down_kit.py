"""The database-down suite's parts: push traffic the way the PHP app <= 5.3 sends it (batches re-queued on
503 + cc-retry or sources_to_retry, actions kept on 5xx) and a report of what the database holds."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from contract_kit import SourcePart, guzzle_multipart, signed_headers

# what a 503 says while PostgreSQL is away: unreachable, or lost under a request that was running
OUTAGE_ERRORS = (
    "Vector DB Error: PostgreSQL is not reachable",
    "Vector DB Error: the connection to PostgreSQL broke during the request",
    # loads that arrived during the outage still hold their source claims while the database comes back
    "Vector DB Error: all 16 claim connections stayed busy",
)
# the routes whose caller in the PHP app does not re-queue on cc-retry: their 503s must not carry it
NO_RETRY_ROUTES = frozenset({"/query", "/docSearch", "/countIndexedDocuments"})
TOPICS = ("budget", "label", "hiking", "meeting", "invoice", "roadmap", "backup", "printer", "garden", "recipe")


@dataclass(frozen=True)
class Outcome:
    """One answer the traffic got."""

    route: str
    status: int
    retry: bool
    body: Any
    at: float


def unclear_refusals(outcomes: list[Outcome]) -> list[Outcome]:
    """503s without a message that names the database outage, or with cc-retry where the caller does not expect it:
    the other routes carry it, the questions must not (PHP ≤ 5.3 shows cc-retry's own text as a chat task's error)."""
    return [
        o
        for o in outcomes
        if o.status == 503
        and not (
            o.retry == (o.route not in NO_RETRY_ROUTES)
            and isinstance(o.body, dict)
            and o.body["error"].startswith(OUTAGE_ERRORS)
        )
    ]


def source_text(n: int) -> bytes:
    """A small document with a word no other document has (doc<n>marker)."""
    topic = TOPICS[n % len(TOPICS)]
    return (
        f"Document {n} is about the {topic}. The {topic} notes of team {n} say the review is on Friday and the "
        f"owner is person {n}. Unique marker doc{n}marker for search."
    ).encode()


@dataclass
class PushTraffic:
    """Threads sending /loadSources batches, /query + /docSearch, /updateAccess and /heartbeat until stopped.

    Like the PHP app: a batch answered 503 + cc-retry, or a source in sources_to_retry, goes back to the end of the
    queue; an access change stays queued until a 2xx. Only sources in a 200's loaded_sources are acknowledged.
    `dsn`: the app's database, read to know when alice's question can be answered (embedded_chunks).
    """

    base: str
    dsn: str
    documents: int
    batch: int = 3
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    shared: set[str] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[str] = deque(f"files__default: {n}" for n in range(1, self.documents + 1))
        self._in_flight: set[str] = set()
        self._access: deque[str] = deque()
        self._threads = [
            threading.Thread(target=self._guarded, args=(loop,), name=loop.__name__, daemon=True)
            for loop in (self._ingest, self._ingest, self._query, self._share, self._heartbeat)
        ]
        self.errors: list[BaseException] = []

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout_s: float = 60.0) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        assert not self.errors, self.errors

    @property
    def done(self) -> bool:
        """Every document acknowledged and every access change applied."""
        with self._lock:
            return len(self.acknowledged) == self.documents and len(self.shared) == self.documents

    def count(self, route: str, status: int, since: float = 0.0) -> int:
        """Answers of `route` with `status` received after `since` (time.time())."""
        with self._lock:
            return sum(1 for o in self.outcomes if o.route == route and o.status == status and o.at > since)

    def _record(self, route: str, response: httpx.Response) -> Outcome:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        outcome = Outcome(route, response.status_code, response.headers.get("cc-retry") == "true", body, time.time())
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def _guarded(self, loop: Any) -> None:
        try:
            with httpx.Client(base_url=self.base, timeout=120) as http:
                loop(http)
        except BaseException as exc:  # surfaced by join()
            self.errors.append(exc)

    def _ingest(self, http: httpx.Client) -> None:
        while not self.stop.is_set():
            with self._lock:
                batch = [self._pending.popleft() for _ in range(min(self.batch, len(self._pending)))]
                self._in_flight.update(batch)
            if not batch:
                time.sleep(0.05)
                continue
            parts = [SourcePart(s, source_text(int(s.split(": ")[1])), user_ids=("alice",)) for s in batch]
            body, content_type = guzzle_multipart(parts)
            headers = {**signed_headers(), "Content-Type": content_type}
            outcome = self._record("/loadSources", http.put("/loadSources", content=body, headers=headers))
            loaded = set(outcome.body.get("loaded_sources", [])) if outcome.status == 200 else set()
            with self._lock:
                self._in_flight.difference_update(batch)
                self.acknowledged |= loaded
                self._access.extend(s for s in batch if s in loaded)
                self._pending.extend(s for s in batch if s not in loaded)

    def _query(self, http: httpx.Client) -> None:
        searchable = False
        while not self.stop.is_set():
            if not self.acknowledged:  # before the first document a question is answered 400 (nothing to search)
                time.sleep(0.05)
                continue
            # the question's words other than 'when' are in every document: from 20 chunks on (the lexical leg's
            # word statistics) they do not count, so only the vector leg can find a chunk, and until one is embedded
            # the answer is the 400 "No documents retrieved", not an outage's. Checked before asking: a chunk
            # embedded by then is one the search must find.
            searchable = searchable or bool(embedded_chunks(self.dsn))
            for path, body in (
                ("/query", {"userId": "alice", "query": "when is the review, on Friday?"}),
                ("/docSearch", {"userId": "alice", "query": "garden notes Friday", "ctxLimit": 5}),
            ):
                response = http.post(path, json=body, headers=signed_headers("alice"))
                if path == "/query" and not searchable and response.status_code == 400:
                    continue
                self._record(path, response)
            time.sleep(0.05)

    def _share(self, http: httpx.Client) -> None:
        while not self.stop.is_set():
            with self._lock:
                replay = not self._access
                # nothing new to share: replay one (an action the PHP app sends twice changes nothing)
                source = next(iter(self.shared), None) if replay else self._access.popleft()
            if source is None or replay:
                time.sleep(0.1)
            if source is None:
                continue
            change = {"op": "allow", "userIds": ["bob"], "sourceId": source}
            outcome = self._record("/updateAccess", http.post("/updateAccess", json=change, headers=signed_headers()))
            with self._lock:
                if outcome.status == 200:
                    self.shared.add(source)
                else:
                    self._access.append(source)  # the PHP app's ActionJob keeps a row whose request got a 5xx

    def _heartbeat(self, http: httpx.Client) -> None:
        while not self.stop.is_set():
            self._record("/heartbeat", http.get("/heartbeat"))
            time.sleep(0.1)


def embedded_chunks(dsn: str) -> int | None:
    """How many chunks have their vector; None while PostgreSQL is not reachable."""
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM chunks WHERE embedding IS NOT NULL").fetchone()
    except psycopg.OperationalError:
        return None
    return 0 if row is None else int(row[0])


def store_report(dsn: str) -> dict[str, Any]:
    """What the database holds: documents, chunk duplicates, un-embedded chunks, bob's access."""
    with psycopg.connect(dsn) as conn:
        documents = [row[0] for row in conn.execute("SELECT source_id FROM documents WHERE state = 'indexed'")]
        duplicated = conn.execute(
            "SELECT count(*) FROM (SELECT source_id FROM chunks GROUP BY source_id"
            " HAVING count(*) <> count(DISTINCT ordinal) OR count(DISTINCT version) <> 1) d"
        ).fetchone()
        pending = conn.execute("SELECT count(*) FROM chunks WHERE embed_state <> 'embedded'").fetchone()
        bob = [row[0] for row in conn.execute("SELECT source_id FROM access WHERE user_id = 'bob'")]
    return {
        "documents": sorted(documents),
        "duplicated_sources": 0 if duplicated is None else int(duplicated[0]),
        "unembedded_chunks": 0 if pending is None else int(pending[0]),
        "bob": sorted(bob),
    }
