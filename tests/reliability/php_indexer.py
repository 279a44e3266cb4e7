"""The PHP app's indexing loop (IndexerJob 4.1-5.3) over HTTP: batches of 25 files to PUT /loadSources, with its
retry rules, and a corpus of generated documents whose every word can be found again in the database."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from contract_kit import SourcePart, guzzle_multipart, signed_headers

# CC_MAX_FILES since PHP 4.1.0
BATCH_SIZE = 25
_VOCABULARY = (
    "archive budget calendar contract deadline estimate forecast invoice ledger meeting minutes notebook offer "
    "payment planning proposal quarter receipt report review roadmap schedule summary supplier survey target "
    "timeline travel vendor workshop alpine berlin canal delta harbour island meadow orchard river summit valley "
    "green label model data code open rating ethics policy office team project release server backup storage"
)


@dataclass(frozen=True)
class Document:
    """One file as the PHP app sends it; `text` is also what the parser must return (ASCII, normalised)."""

    source_id: str
    text: str
    users: tuple[str, ...]
    mimetype: str

    @property
    def content(self) -> bytes:
        return self.text.encode()

    def part(self) -> SourcePart:
        number = self.source_id.rsplit(" ", 1)[-1]
        return SourcePart(
            self.source_id, self.content, user_ids=self.users, title=f"Documents/{number}.txt", mimetype=self.mimetype
        )


def corpus(count: int, max_paragraphs: int = 5, seed: int = 9) -> list[Document]:
    """`count` documents of 1 to `max_paragraphs` paragraphs of 40-160 words (a chunk of the shipped config holds
    about two), each with a word of its own (`marker<number>`) and read by 1-3 of 8 users."""
    rng = random.Random(seed)
    vocabulary = _VOCABULARY.split()
    users = [f"user{n}" for n in range(8)]
    documents = []
    for number in range(1, count + 1):
        paragraphs = []
        for _ in range(rng.randint(1, max_paragraphs)):
            words = [rng.choice(vocabulary) for _ in range(rng.randint(40, 160))]
            words.insert(rng.randrange(len(words)), f"marker{number}")
            paragraphs.append(" ".join(words).capitalize() + ".")
        mimetype = "text/markdown" if number % 5 == 0 else "text/plain"
        readers = tuple(sorted(rng.sample(users, rng.randint(1, 3))))
        documents.append(Document(f"files__default: {number}", "\n\n".join(paragraphs), readers, mimetype))
    return documents


@dataclass
class IndexerTally:
    """What the indexer saw: per-source outcomes and every answer by kind."""

    acknowledged: set[str] = field(default_factory=set)
    # in neither list of a 200 answer: the PHP app removes them from its queue (a file that cannot be parsed)
    dropped: set[str] = field(default_factory=set)
    # a 4xx for a whole batch: the PHP app drops it (a bug of ours if the batch was well-formed)
    refused: dict[str, str] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)
    # the first body seen of each kind of answer other than 200
    samples: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    resent: int = 0


class PhpIndexer:
    """`senders` parallel IndexerJobs working off one queue, as Nextcloud's cron runs them for several storages.

    Retry rules of the PHP app: ids in `sources_to_retry`, a 503 with `cc-retry: true` (RetryIndexException) and,
    from 5.3, any exception (a 5xx or a dropped connection) put the files back at the end of the queue.
    """

    def __init__(self, base_url: str, documents: Sequence[Document], senders: int = 2, pause_s: float = 0.5) -> None:
        self.base_url = base_url
        self.tally = IndexerTally()
        self._queue: deque[Document] = deque(documents)
        self._in_flight = 0
        self._lock = threading.Lock()
        self._senders = senders
        self._pause_s = pause_s
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    @property
    def settled(self) -> int:
        """Documents the indexer is done with (acknowledged, dropped or refused)."""
        with self._lock:
            return len(self.tally.acknowledged) + len(self.tally.dropped) + len(self.tally.refused)

    def start(self) -> None:
        for number in range(self._senders):
            thread = threading.Thread(target=self._send_loop, name=f"php-indexer-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def join(self, timeout: float) -> None:
        """Wait until the queue is empty; raise if it is not within `timeout` s (the threads are stopped)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        if any(thread.is_alive() for thread in self._threads):
            with self._lock:
                left = len(self._queue) + self._in_flight
            raise AssertionError(f"the indexer still had {left} documents after {timeout} s; answers {self.tally}")

    def _take(self) -> list[Document] | None:
        with self._lock:
            if not self._queue:
                return None if self._in_flight == 0 else []
            batch = [self._queue.popleft() for _ in range(min(BATCH_SIZE, len(self._queue)))]
            self._in_flight += len(batch)
            return batch

    def _send_loop(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=300) as http:
            while not self._stop.is_set():
                batch = self._take()
                if batch is None:
                    return
                if not batch:  # another sender holds the last files, which may come back
                    time.sleep(0.1)
                    continue
                requeue = self._send(http, batch)
                with self._lock:
                    self._queue.extend(requeue)
                    self._in_flight -= len(batch)
                    self.tally.resent += len(requeue)
                if requeue:
                    time.sleep(self._pause_s)

    def _send(self, http: httpx.Client, batch: list[Document]) -> list[Document]:
        body, content_type = guzzle_multipart([document.part() for document in batch])
        headers = {**signed_headers(), "Content-Type": content_type}
        try:
            response = http.put("/loadSources", content=body, headers=headers)
        except httpx.TransportError as exc:
            self._count(f"transport error {type(exc).__name__}", str(exc))
            return batch
        with self._lock:
            self.tally.requests += 1
        if response.status_code == 200:
            answer = response.json()
            loaded, retry = set(answer["loaded_sources"]), set(answer["sources_to_retry"])
            self._count("200 with retries" if retry else "200")
            with self._lock:
                for document in batch:
                    if document.source_id in loaded:
                        self.tally.acknowledged.add(document.source_id)
                    elif document.source_id not in retry:
                        self.tally.dropped.add(document.source_id)
            return [document for document in batch if document.source_id in retry]
        kind = f"{response.status_code}" + (" cc-retry" if response.headers.get("cc-retry") == "true" else "")
        self._count(kind, response.text)
        if response.status_code >= 500:
            return batch
        with self._lock:
            for document in batch:
                self.tally.refused[document.source_id] = f"{response.status_code} {response.text[:200]}"
        return []

    def _count(self, kind: str, sample: str = "") -> None:
        with self._lock:
            self.tally.answers[kind] += 1
            if sample:
                self.tally.samples.setdefault(kind, sample[:300])
