"""The cross-lingual leg's vectors: a second, multilingual vector for every chunk, filled in by a background loop, and
the question vectors retrieval asks for.

The embedding model (MiniLM by default) reads English; a question in German about English documents finds little
through it, and nothing through the full-text leg. The multilingual model finds it, but ranks English questions worse
than MiniLM and embeds about six times slower. So it is a third leg, asked only for questions whose words the
documents do not hold (RetrievalService), and with `backfill: when_asked` its vectors are computed only once such a
question has been asked: an install whose users ask in the documents' language never pays for them. A question that is
foreign only to its user's few documents has that user's chunks filled in, not the whole index; the whole index's are
filled in behind the main embeddings of new uploads, never ahead of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal, Protocol

import psycopg

from appliance.retrieval_config import CrossLingualConfig
from quart_app.background_loops import LoopHandle, backoff, loop_detail
from quart_app.runtimes.errors import RuntimeServiceError
from quart_app.services.generic_questions import GENERIC_QUESTIONS
from quart_app.services.own_vectors_wait import OwnVectorsWait
from quart_app.store import Database
from quart_app.store.cross_lingual_store import (
    PendingChunk,
    claim_chunks,
    main_embeddings_due,
    mark_refused,
    mark_waiting_user,
    mark_wanted,
    pending_chunks,
    read_progress,
    read_wanted,
    user_coverage,
    waiting_users_chunks,
    write_vectors,
)
from quart_app.store.database import Connection
from quart_app.store.errors import StoreError

log = logging.getLogger(__name__)

# chunks read per query of the backfill (embedded batch_size at a time)
READ_CHUNKS = 256
# when_asked: how often a replica that has not seen such a question itself looks whether another one has
WANTED_POLL_S = 30.0
# with every chunk done: how often to look for new ones (an ingest in this process wakes the loop at once)
IDLE_POLL_S = 30.0
# while new uploads' chunks wait for their main embeddings: how often the whole index's fill looks whether they have
MAIN_EMBEDDINGS_POLL_S = 5.0
# with every chunk past the last one done: how often to look again from the first (a chunk whose ingest committed
# after chunks with higher ids, or whose batch failed, is behind it)
RESCAN_S = 600.0
# a user asking again within this long is not recorded again (one write per user per minute, not per question)
WAITING_USER_RECORD_S = 60.0
# a user is covered by the leg when at most this many of the chunks the user may read, and at most this share of
# them, have no vector (one the model refuses must not turn the leg off for its user)
UNCOVERED_AT_MOST = 16
UNCOVERED_SHARE_AT_MOST = 0.1
# how long a user's coverage is trusted before it is counted again: briefly while it is short, a minute once it was not
UNCOVERED_CHECK_S = 5.0
COVERED_CHECK_S = 60.0
DATABASE_BACKOFF_S = (1.0, 30.0)


class MultilingualEmbedder(Protocol):
    """What the index needs from the model (CrossLingualModel satisfies it)."""

    @property
    def model_id(self) -> str: ...

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]: ...


class CrossLingualIndex:
    """The multilingual model, its vectors' backfill loop (run by the replicas with the embedding duty, which share
    the work: each batch is claimed with locks another replica skips), and its progress for GET /status."""

    LOOP_NAME = "cross-lingual-backfill"

    def __init__(self, db: Database, model: MultilingualEmbedder, config: CrossLingualConfig) -> None:
        self._db = db
        self._model = model
        self._config = config
        self._wanted = asyncio.Event()
        self._new_chunks = asyncio.Event()
        self._rescanned_at = time.monotonic()
        # user id -> monotonic time this process last recorded the user's question for the backfill
        self._recorded_users: dict[str, float] = {}
        # monotonic time before which the asking users' chunks are not read first (what is left of them failed, or
        # another replica has it)
        self._users_first_from = 0.0
        # a question needed the leg in this process since the current read: its user's chunks come next, not after
        # the rest of that read (up to READ_CHUNKS)
        self._user_asked = asyncio.Event()
        # the last pass from the first chunk found none without a vector, and nothing was filled in since
        self._complete = False
        # while filling in: (monotonic start, vectors written since)
        self._filling: tuple[float, int] | None = None
        # the backfill loop runs in this process: an asking user's chunks are read first here, without delay
        self._fills_here = False
        # user id -> (monotonic time counted, whether every chunk the user may read had its vector)
        self._coverage: dict[str, tuple[float, bool]] = {}
        # the mean vector of GENERIC_QUESTIONS in this model (hub_correction), once a question needed it
        self._generic_mean: list[float] | None = None
        self._generic_lock = asyncio.Lock()
        # how long a question waits for its user's chunks, at the pace of this process's fill
        self._own_vectors = OwnVectorsWait(db, config.batch_size)
        if config.backfill == "always":
            self._wanted.set()

    @property
    def model_id(self) -> str:
        return self._model.model_id

    async def query_vector(self, question: str) -> list[float]:
        """The question's vector less hub_correction times the mean vector of generic questions (see
        generic_questions): the ranking it gives is the cosine less that share of each passage's likeness to any
        question."""
        vector = (await self._model.embed([question], "query"))[0]
        weight = self._config.hub_correction
        if not weight:
            return vector
        generic = await self._generic_question_mean()
        return [value - weight * mean for value, mean in zip(vector, generic, strict=True)]

    async def _generic_question_mean(self) -> list[float]:
        """The mean vector of GENERIC_QUESTIONS, embedded once, at the first question that needs it (0.5 s)."""
        async with self._generic_lock:
            if self._generic_mean is None:
                vectors = await self._model.embed(list(GENERIC_QUESTIONS), "query")
                self._generic_mean = [sum(column) / len(vectors) for column in zip(*vectors, strict=True)]
        return self._generic_mean

    async def asked(self, user_id: str, *, whole_index: bool = True) -> None:
        """`user_id`'s question needed the leg: that user's chunks get their vectors first (recorded for every replica);
        with `whole_index` (the question is foreign to the index, not only to the user's few documents) every chunk
        gets its vector from now on, after that user's. When this replica fills them in and the user has a few chunks
        without one, returns once they have theirs, so that this question is answered with them, unless their fill
        would take too long (OwnVectorsWait)."""
        now = time.monotonic()
        recorded = self._recorded_users.get(user_id)
        recent = recorded is not None and now - recorded < WAITING_USER_RECORD_S
        if recent and (self._wanted.is_set() or not whole_index):
            return
        async with self._db.connection() as conn:
            await mark_waiting_user(conn, user_id)
            first = whole_index and not self._wanted.is_set() and await mark_wanted(conn)
        self._recorded_users[user_id] = now
        if first:
            log.info(
                "a question whose words its user's documents and the index mostly lack (in another language than"
                " theirs?): filling in the cross-lingual vectors, its user's chunks first"
            )
        elif not whole_index and not self._wanted.is_set() and recorded is None:
            log.info(
                "a question whose words its user's few documents mostly lack, but the index holds: filling in the"
                " cross-lingual vectors of that user's chunks only"
            )
        if whole_index:
            self._wanted.set()
        self._user_asked.set()
        self._new_chunks.set()  # a loop waiting for new chunks starts on this user's at once
        # not once every chunk is known to have its vector: counting a big user's chunks reads all of them
        if self._fills_here and not self._complete and time.monotonic() >= self._users_first_from:
            await self._own_vectors.wait(user_id)

    async def covers(self, user_id: str) -> bool:
        """Whether (nearly) every chunk `user_id` may read has its vector (UNCOVERED_AT_MOST): until then the leg's
        nearest chunks would be the nearest of the few filled in so far, which rank above better ones of the other
        legs (measured on the real Nextcloud during a fill), so the question is answered without the leg."""
        if self._fills_here and self._complete:
            return True
        now = time.monotonic()
        counted = self._coverage.get(user_id)
        if counted is not None and now - counted[0] < (COVERED_CHECK_S if counted[1] else UNCOVERED_CHECK_S):
            return counted[1]
        chunks_enough = int(UNCOVERED_AT_MOST / UNCOVERED_SHARE_AT_MOST) + 1
        async with self._db.connection() as conn:
            waiting, chunks = await user_coverage(conn, user_id, UNCOVERED_AT_MOST + 1, chunks_enough)
        covered = waiting <= UNCOVERED_AT_MOST and waiting <= UNCOVERED_SHARE_AT_MOST * chunks
        self._coverage[user_id] = (now, covered)
        return covered

    def wake(self) -> None:
        """New chunks were stored."""
        self._new_chunks.set()

    async def progress(self) -> dict[str, Any]:
        """How far the vectors are, and how many chunks the model refused; while this replica fills them in and some
        are left, its rate and the time left at that rate."""
        async with self._db.connection() as conn:
            found = await read_progress(conn)
        left = found.chunks - found.vectors - found.refused
        rate = self._fill_rate() if left > 0 else None
        return {
            "model": self.model_id,
            "backfill": self._config.backfill,
            "wanted": found.wanted or self._config.backfill == "always",
            "vectors": found.vectors,
            "chunks": found.chunks,
            "refused": found.refused,
            "chunks_per_s": None if rate is None else round(rate, 2),
            "eta_s": None if rate is None else round(left / rate),
        }

    def _fill_rate(self) -> float | None:
        """Chunks per second this replica has filled in since the current fill began (None when it is not filling, or
        has not written any yet)."""
        if self._filling is None:
            return None
        started, filled = self._filling
        elapsed = time.monotonic() - started
        return filled / elapsed if filled and elapsed > 0 else None

    async def run(self, handle: LoopHandle) -> None:
        """Fill in the vectors of the chunks of users who asked first; then, while the whole index's are wanted, those
        of every chunk in id order, behind the main embeddings; then wait for new chunks."""
        failures = 0
        after_id = 0
        self._fills_here = True
        while not handle.stopping.is_set():
            try:
                after_id = await self._fill(handle, after_id, await self._whole_index_wanted())
                failures = 0
            except (psycopg.Error, StoreError, OSError) as exc:
                failures += 1
                handle.status.set("waiting", loop_detail(exc, "database: "))
                await handle.sleep(backoff(*DATABASE_BACKOFF_S, failures))

    async def _whole_index_wanted(self) -> bool:
        """Whether every chunk's vector is wanted: backfill always, or a question on any replica needed the leg for
        the whole index."""
        if self._wanted.is_set():
            return True
        async with self._db.connection() as conn:
            if await read_wanted(conn):
                self._wanted.set()
        return self._wanted.is_set()

    async def _fill(self, handle: LoopHandle, after_id: int, whole_index: bool) -> int:
        """One read of chunks without vectors: those of the users who asked (while some of them can be embedded),
        else with `whole_index` those past `after_id` (once none is left there, every RESCAN_S from the first chunk,
        and again while that finds some it can embed) while no new upload's chunk waits for its main embedding;
        embedded and written batch by batch, each batch claimed so that replicas sharing the database embed a chunk
        once; a question in this process that needs the leg, or a new upload's chunks, end a read in id order after its
        current batch. The id to read past next (the same when none was found, after waiting)."""
        self._new_chunks.clear()
        self._user_asked.clear()
        behind = behind_main_embeddings = False
        async with self._db.connection() as conn:
            users_first = False
            pending: list[PendingChunk] = []
            if time.monotonic() >= self._users_first_from:
                pending = await waiting_users_chunks(conn, READ_CHUNKS)
                users_first = bool(pending)
            if not users_first and whole_index:
                behind_main_embeddings = await main_embeddings_due(conn)
            if not users_first and whole_index and not behind_main_embeddings:
                pending = await pending_chunks(conn, after_id, READ_CHUNKS)
                behind = not pending and after_id > 0 and time.monotonic() - self._rescanned_at >= RESCAN_S
            if behind:
                pending = await pending_chunks(conn, 0, READ_CHUNKS)
        if behind_main_embeddings:
            # a question's user is read first meanwhile
            handle.status.set("waiting", "new uploads' chunks wait for their main embeddings: theirs come first")
            await handle.sleep(MAIN_EMBEDDINGS_POLL_S, self._user_asked)
            return after_id
        if not pending:
            if behind:
                self._rescanned_at = time.monotonic()
            if self._filling is not None and self._filling[1]:
                started, filled = self._filling
                log.info("cross-lingual vectors filled in: %d chunk(s) in %.0f s", filled, time.monotonic() - started)
            self._filling = None
            if not whole_index:
                handle.status.set("waiting", "no question has needed the cross-lingual leg for the whole index yet")
                await handle.sleep(WANTED_POLL_S, self._new_chunks)
                return after_id
            # read from the first chunk: none is left without a vector
            self._complete = self._complete or after_id == 0 or behind
            if self._complete:
                handle.status.set("idle", "every chunk has its cross-lingual vector")
            else:
                handle.status.set(
                    "idle",
                    f"waiting for new chunks; a pass from the first chunk {self._rescan_in()} fills any left behind",
                )
            await handle.sleep(IDLE_POLL_S, self._new_chunks)
            return after_id
        handle.status.set(
            "filling",
            "the chunks of users who asked in another language"
            if users_first
            else f"chunks from id {pending[0].chunk_id}",
        )
        started, filled_before = self._filling or (time.monotonic(), 0)
        self._filling = (started, filled_before)
        texts = {chunk.chunk_id: chunk.text for chunk in pending}
        remaining = [chunk.chunk_id for chunk in pending]
        last_done = after_id
        self._complete = False
        yielded = False
        while remaining and not handle.stopping.is_set():
            if self._user_asked.is_set() and not users_first:
                break  # that user's chunks first; this read goes on from its last batch after them
            batch_started = time.monotonic()
            async with self._db.connection() as conn, conn.transaction():
                yielded = not users_first and await main_embeddings_due(conn)
                if yielded:
                    break  # a new upload's main embeddings first; this read goes on from its last batch after them
                # locked until the commit: another replica's backfill skips these chunks meanwhile
                batch = await claim_chunks(conn, remaining, self._config.batch_size)
                if batch:
                    written = await self._embed_batch(handle, conn, batch, texts)
                    self._filling = (started, self._filling[1] + written)
            if not batch:
                remaining = []  # the rest is done, or another replica is embedding it
            else:
                self._own_vectors.batch_ended(len(batch), time.monotonic() - batch_started)
                remaining = remaining[remaining.index(batch[-1]) + 1 :]
                last_done = batch[-1]
        # what is left behind fails again, or another replica has it
        if behind and not yielded and self._filling[1] == filled_before:
            self._rescanned_at = time.monotonic()
        if users_first:
            if self._filling[1] == filled_before:  # none written: read them first again only after the next rescan
                self._users_first_from = time.monotonic() + RESCAN_S
            return after_id  # those users' chunks lie anywhere: the pass in id order goes on where it was
        # chunks left behind (read from the first) are all below after_id: the position stays
        return max(after_id, last_done if remaining else pending[-1].chunk_id)

    def _rescan_in(self) -> str:
        return f"in {max(0.0, RESCAN_S - (time.monotonic() - self._rescanned_at)) / 60:.0f} min"

    async def _embed_batch(self, handle: LoopHandle, conn: Connection, batch: list[int], texts: dict[int, str]) -> int:
        """The batch's vectors embedded and written; how many were written. A batch the model refuses is embedded
        again one chunk at a time, and a chunk it refuses on its own is marked refused (counted as failed)."""
        try:
            vectors = await self._model.embed([texts[chunk_id] for chunk_id in batch], "passage")
        except RuntimeServiceError:
            raise  # the model is closed: the app is stopping
        except Exception as exc:  # one chunk the engine refuses must not stop the others, nor cost its batch theirs
            if len(batch) > 1:
                log.warning("cross-lingual vectors of %d chunks failed (%s): one chunk at a time", len(batch), exc)
                return sum([await self._embed_batch(handle, conn, [chunk_id], texts) for chunk_id in batch])
            first = await mark_refused(conn, batch[0])
            # a chunk refused again at each pass from the first chunk is logged once
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "the cross-lingual model refused chunk %d (%s): it does not hold up its users' leg; tried again at"
                " each pass from the first chunk",
                batch[0],
                exc,
            )
            handle.status.count("failed", 1)
            return 0
        written = await write_vectors(conn, batch, vectors)
        handle.status.count("vectors", written)
        return written
