"""The embedding worker: claims queued chunks under a lease, embeds them in token-budgeted batches, writes vectors.

Several workers (tasks, processes or machines) share one queue: claims skip rows another worker has locked and
results are written only while this worker's lease token still matches, so each chunk is written once. While an
embedding request runs, the lease is renewed every third of `lease_s`, so a slow request (up to
embedding.request_timeout) is not taken over and embedded twice; a worker that finds its lease taken over drops the
request. A worker killed mid-batch loses nothing: its lease expires and another worker takes the batch.

An unavailable embedding service is an outage, not a property of the chunks: the batch is given back with its
attempts untouched and the worker waits (`EmbedderOutage`, capped exponential backoff) until the service answers
again; so does a service that starts returning vectors of another dimension than the stored ones, or whose responses
name another model than they did for the stored vectors (it switched models behind the same URL: a restart binds the
new model and re-embeds). Only errors about the texts themselves
count toward `max_attempts`, and a batch that gets one is embedded
text by text, so one bad chunk does not fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
import psycopg

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.background_loops import BackgroundLoops, LoopHandle, backoff, loop_detail
from quart_app.runtimes.embedding_client import EmbeddedVectors
from quart_app.runtimes.errors import EmbeddingServiceError
from quart_app.services.embedder_outage import EmbedderOutage, requeue_outage_failures
from quart_app.services.embedding_batch_writer import EmbeddingBatchWriter, Vector
from quart_app.services.embedding_claims import EmbeddingClaims
from quart_app.services.embedding_counters import WorkerCounters
from quart_app.services.embedding_model_guard import StoredModelGuard
from quart_app.services.errors import LeaseLostError, WorkerClosedError
from quart_app.services.queue_listener import listen_for_queued_chunks
from quart_app.store import Database, StoreError
from quart_app.store.database_failure import loggable_message
from quart_app.store.errors import PERMANENT_ERRORS
from quart_app.store.queue_store import Claim, cached_vectors

logger = logging.getLogger(__name__)

# longest pause between attempts while the database is unreachable
_STORE_BACKOFF_MAX_S = 30.0
# database errors that running the same statements again cannot cure: a data or integrity error, a program limit, a
# permission or a missing table or column (class 42)
_REFUSALS = (*PERMANENT_ERRORS, psycopg.ProgrammingError)


class PassageEmbedder(Protocol):
    """What the worker needs from quart_app.runtimes.embedding_client.EmbeddingClient."""

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]: ...


class EmbeddingWorker:
    """`config.workers` claim/embed loops plus one LISTEN loop, run by a BackgroundLoops (the app's, or its own)."""

    def __init__(
        self,
        db: Database,
        embedder: PassageEmbedder,
        config: EmbeddingWorkerConfig,
        loops: BackgroundLoops | None = None,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._config = config
        self._loops = loops or BackgroundLoops()
        self._wake = asyncio.Event()
        # set while a loop waits on an empty queue (tests wait on it instead of sleeping)
        self.idle = asyncio.Event()
        self._listening = asyncio.Event()
        self._names = [f"embedding_worker_{i}" for i in range(config.workers)] + ["embedding_worker_listen"]
        self._state = "new"
        self._claims = EmbeddingClaims(db, config)
        self._model_guard = StoredModelGuard(db)
        self.counters = WorkerCounters()
        self._writer = EmbeddingBatchWriter(db, config, self.counters, self._store_backoff)
        self.outage = EmbedderOutage(config.outage_backoff_base_s, config.outage_backoff_max_s)

    @property
    def running(self) -> bool:
        """True between `start()` and `stop()`."""
        return self._state == "running"

    async def wait_listening(self, timeout_s: float = 10.0) -> None:
        """Wait until NOTIFYs from other processes reach this worker (tests, start-up checks)."""
        await asyncio.wait_for(self._listening.wait(), timeout=timeout_s)

    def wake(self) -> None:
        """Ask idle loops to look at the queue now (ingest calls this after queuing chunks)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the loops; a second call while running does nothing."""
        if self._state == "closed":
            raise WorkerClosedError("the embedding worker was closed; create a new EmbeddingWorker")
        if self._state == "running":
            return
        self._state = "running"
        for index in range(self._config.workers):
            self._loops.start(self._names[index], functools.partial(self._loop, index=index))
        listen = functools.partial(
            listen_for_queued_chunks,
            dsn=self._db.dsn,
            wake=self._wake,
            listening=self._listening,
            retry_wait=self._store_backoff,
        )
        self._loops.start(self._names[-1], listen)
        logger.info("embedding worker started with %d loop(s)", self._config.workers)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Let the loops finish their current batch for up to `timeout_s`, then cancel them."""
        if self._state != "running":
            return
        self._state = "stopped"
        await self._loops.stop(self._names, timeout_s)
        # a database still away leaves those batches to their leases
        with contextlib.suppress(psycopg.Error, StoreError, OSError):
            await self._claims.release_pending()
        logger.info("embedding worker stopped")

    async def close(self) -> None:
        """Stop and refuse further starts; safe to call twice."""
        await self.stop()
        self._state = "closed"

    async def __aenter__(self) -> EmbeddingWorker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def run_once(self) -> int | None:
        """Claim and process one batch: chunks written, or None when nothing was due.

        An unavailable embedding service raises its EmbeddingServiceError; the batch is given back, attempts untouched.
        A database error mid-batch is raised too; the batch is given back at the next call the database answers.
        Any other exception counts as a failed attempt of the batch and is logged.
        """
        await self._claims.release_pending()
        await self._model_guard.read_once()
        claim = await self._claims.next_claim()
        if claim is None:
            return None
        try:
            return await self._process(claim)
        except LeaseLostError as exc:
            self.counters.leases_lost += 1
            logger.warning("embedding batch of %d chunks dropped: %s", len(claim.chunks), exc)
            return 0
        except EmbeddingServiceError as exc:
            self.outage.failed(str(exc))
            await self._claims.release_claim(claim)
            raise
        except (psycopg.Error, StoreError, OSError):
            # the database failed mid-batch: hand the batch back when it answers, not when its lease ends (10 min)
            self._claims.release_later(claim)
            raise
        except asyncio.CancelledError:
            # shutting down mid-batch: hand the batch back instead of waiting for the lease to expire
            await self._claims.release_claim(claim)
            raise
        except Exception as exc:
            # a bug: count an attempt with backoff, so the batch neither waits out its lease again and again (10 min)
            # nor comes straight back, and ends failed with the reason in /status after max_attempts
            logger.exception("embedding batch of %d chunks: unexpected error", len(claim.chunks))
            return await self._writer.fail_batch(
                claim, loop_detail(exc, "unexpected error in the embedding worker: "), True
            )

    async def drain(self) -> int:
        """Process batches until nothing is due; returns chunks written (tests and benchmarks)."""
        total = 0
        while (written := await self.run_once()) is not None:
            total += written
        return total

    async def _process(self, claim: Claim) -> int:
        texts: dict[bytes, str] = {}
        for chunk in claim.chunks:
            texts.setdefault(chunk.text_hash, chunk.text)
        async with self._db.connection() as conn:
            vectors = await cached_vectors(conn, list(texts))
        self.counters.cache_hits += len(vectors)
        missing = [h for h in texts if h not in vectors]
        if missing:
            try:
                computed = await self._claims.while_leased(claim, self._embed([texts[h] for h in missing]))
            except EmbeddingServiceError as exc:
                if exc.unavailable:
                    raise
                if len(missing) == 1:
                    return await self._writer.fail_batch(claim, str(exc), exc.retryable)
                # one bad input must not fail its batch-mates: find it by embedding the texts one by one
                return await self._process_one_by_one(claim, texts, vectors, missing)
            vectors.update(zip(missing, computed, strict=True))
        return await self._writer.complete_batch(claim, vectors, missing)

    async def _process_one_by_one(
        self, claim: Claim, texts: dict[bytes, str], vectors: dict[bytes, Vector], missing: list[bytes]
    ) -> int:
        errors: dict[bytes, EmbeddingServiceError] = {}
        for text_hash in missing:
            try:
                vectors[text_hash] = (await self._claims.while_leased(claim, self._embed([texts[text_hash]])))[0]
            except EmbeddingServiceError as exc:
                if exc.unavailable:
                    raise
                errors[text_hash] = exc
        good = [c for c in claim.chunks if c.text_hash not in errors]
        written = await self._writer.complete_batch(
            Claim(claim.token, good), vectors, [h for h in missing if h not in errors]
        )
        for text_hash, error in errors.items():
            bad = Claim(claim.token, [c for c in claim.chunks if c.text_hash == text_hash])
            await self._writer.fail_batch(bad, str(error), error.retryable)
        return written

    def _store_backoff(self, failures: int) -> float:
        """idle_poll_s, doubled per consecutive failure, capped at _STORE_BACKOFF_MAX_S."""
        return backoff(self._config.idle_poll_s, _STORE_BACKOFF_MAX_S, failures)

    async def _embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        started = time.perf_counter()
        try:
            answer = await self._embedder.embed(texts, "passage")
        except EmbeddingServiceError as exc:
            if not exc.unavailable:
                self.outage.answered()  # the service answered: the error is about the texts
            raise
        self.counters.embed_seconds += time.perf_counter() - started
        computed = np.asarray(answer, dtype=np.float32)
        if computed.ndim != 2 or computed.shape[0] != len(texts):
            self.outage.answered()
            raise EmbeddingServiceError(
                f"unusable embedding response: embedding service returned {computed.shape} for {len(texts)} texts;"
                " check the service",
                status=None,
                retryable=False,
            )
        await self._model_guard.check_dimension(computed.shape[1])
        if isinstance(answer, EmbeddedVectors) and answer.reported_model is not None:
            await self._model_guard.check_reported_model(answer.reported_model)
        self.outage.answered()
        self.counters.texts_sent += len(texts)
        return computed

    async def _loop(self, handle: LoopHandle, index: int) -> None:
        if index == 0:
            try:
                await requeue_outage_failures(self._db)
            except (psycopg.Error, StoreError, OSError) as exc:
                logger.warning(
                    "embedding worker: could not queue old outage failures again (%s); next start",
                    loggable_message(exc),
                )
        store_failures = 0
        # the detail of the database refusal last logged, so a refusal repeated every retry is logged once
        refusal: str | None = None
        while not handle.stopping.is_set():
            self._wake.clear()
            if (pause := self.outage.wait_s()) > 0:
                handle.status.set("waiting_for_embedder", self.outage.last_error)
                # new chunks (wake) do not end the wait: the service, not the queue, is what is missing
                await handle.sleep(pause)
                continue
            handle.status.set("running", "embedding queued chunks")
            try:
                written = await self.run_once()
                store_failures = 0
                if refusal is not None:
                    logger.info("embedding worker %d: the database accepts its statements again", index)
                    refusal = None
            except EmbeddingServiceError:
                handle.status.count("embedder_unavailable")
                continue
            except _REFUSALS as exc:
                # not an outage: the same statement is refused every time until an admin changes the database
                store_failures += 1
                reason = f"{type(exc).__name__}: {loggable_message(exc)}"
                detail = (
                    f"the database refuses the embedding worker's statements ({reason}):"
                    " embedding is stopped until it is fixed; check the triggers, constraints and grants on the app's"
                    " tables, the PostgreSQL log names the statement"
                )
                if detail != refusal:
                    logger.error("embedding worker %d: %s", index, detail)
                    refusal = detail
                handle.status.set("failed", detail)
                handle.status.count("store_refusals")
                await handle.sleep(self._store_backoff(store_failures), self._wake)
                continue
            except (psycopg.Error, StoreError, OSError) as exc:
                store_failures += 1
                wait = self._store_backoff(store_failures)
                # PostgreSQL's DETAIL and CONTEXT lines can quote row values: a user's text
                logger.warning(
                    "embedding worker %d: store unavailable (%s); next try in %g s", index, loggable_message(exc), wait
                )
                handle.status.set("backing_off", f"store unavailable: {type(exc).__name__}")
                handle.status.count("store_errors")
                await handle.sleep(wait, self._wake)
                continue
            except Exception:
                # a bug outside a batch (claiming) must not end the loop silently; one inside a batch fails an attempt
                logger.exception("embedding worker %d: unexpected error; continuing", index)
                written = None
            if written is None:
                handle.status.set("idle", "nothing due in the queue")
                self.idle.set()
                await handle.sleep(self._config.idle_poll_s, self._wake)
                self.idle.clear()
            else:
                handle.status.count("chunks_written", written)
