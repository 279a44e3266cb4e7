"""Runs a runtime on one thread off the event loop; concurrent requests are micro-batched by a token budget."""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field

import numpy as np

from quart_app.embedder.errors import EmbedderClosedError
from quart_app.embedder.runtime import EmbeddingRuntime, InputType, Vectors
from quart_app.embedder.runtime_thread import RuntimeThread

log = logging.getLogger(__name__)


@dataclass
class _Job:
    texts: list[str]
    input_type: InputType
    tokens: int
    future: asyncio.Future[Vectors] = field(repr=False)


class _RequestersGone(Exception):
    """Every request of a batch was cancelled before its last slice."""


# close() waits this long for the runtime's slice in progress (~50 ms idle, a second at load 15), then leaves it to the
# process's exit: the embedder's whole stop must fit supervisord's stopwaitsecs=3
SHUTDOWN_TIMEOUT_S = 1.0


class EmbeddingScheduler:
    """Owns the runtime's thread; `start()` in before_serving, `close()` in after_serving."""

    def __init__(
        self,
        runtime: EmbeddingRuntime,
        batch_tokens: int,
        *,
        shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S,
        slice_texts: int = 8,
    ) -> None:
        self._runtime = runtime
        self._batch_tokens = max(1, batch_tokens)
        self._shutdown_timeout_s = shutdown_timeout_s
        self._pending: collections.deque[_Job] = collections.deque()
        self._wakeup = asyncio.Event()
        self._thread: RuntimeThread | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # a big request runs as several runtime calls, so shutdown and waiting queries wait for one slice, not the
        # whole request (8 rows: the ONNX runtime's own batch, as fast per text as 32 on CPU)
        self._slice_texts = max(1, slice_texts)

    async def start(self) -> None:
        if self._closed:
            raise EmbedderClosedError("the embedding scheduler was closed; create a new one")
        if self._task is None:
            # one thread: runtimes are not thread-safe and the model's own threads use the cores
            self._thread = RuntimeThread("embedder-runtime")
            self._task = asyncio.create_task(self._run(), name="embedder-scheduler")

    async def count_tokens(self, texts: list[str], input_type: InputType) -> list[int]:
        thread = self._require_running()
        return await thread.submit(self._runtime.count_tokens, texts, input_type)

    async def embed(self, texts: list[str], input_type: InputType, tokens: int) -> Vectors:
        """Vectors for `texts`; `tokens` (their token count) decides how many requests share one runtime call."""
        self._require_running()
        job = _Job(texts, input_type, tokens, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._wakeup.set()
        return await job.future

    async def close(self) -> None:
        """Fail waiting requests, stop the loop and the thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_exception(EmbedderClosedError("the embedder is shutting down; retry the request"))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._thread is not None and not await self._thread.stop(self._shutdown_timeout_s):
            log.warning(
                "the runtime of model %s is still busy after %.0f s; shutting down without waiting for it",
                self._runtime.model_id,
                self._shutdown_timeout_s,
            )
        log.info("embedding scheduler for model %s closed", self._runtime.model_id)

    def _require_running(self) -> RuntimeThread:
        if self._closed or self._thread is None:
            raise EmbedderClosedError(
                "the embedding scheduler is not running; call start() first or do not use it after close()"
            )
        return self._thread

    def _take_batch(self) -> list[_Job]:
        """Waiting queries first (a user waits for them), else passages: the oldest such job plus later jobs of the
        same input type that fit in the token budget; the other jobs keep their order."""
        kind: InputType = "query" if any(job.input_type == "query" for job in self._pending) else "passage"
        batch: list[_Job] = []
        budget = self._batch_tokens
        rest: collections.deque[_Job] = collections.deque()
        while self._pending:
            job = self._pending.popleft()
            if job.input_type == kind and (not batch or job.tokens <= budget):
                batch.append(job)
                budget -= job.tokens
            else:
                rest.append(job)
        self._pending = rest
        return [job for job in batch if not job.future.done()]

    async def _run(self) -> None:
        thread = self._require_running()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._run_batch(thread, self._take_batch())

    async def _run_batch(self, thread: RuntimeThread, batch: list[_Job]) -> None:
        if not batch:
            return
        texts = [text for job in batch for text in job.texts]
        try:
            vectors = await self._embed_in_slices(thread, texts, batch)
        except _RequestersGone:
            log.info("stopped a batch of %d inputs after a slice: every request waiting for it is gone", len(texts))
            return
        except asyncio.CancelledError:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(EmbedderClosedError("the embedder shut down mid-batch; retry"))
            raise
        except Exception as exc:  # handed to each waiting request, which maps it to a 500
            log.exception("embedding a batch of %d inputs failed", len(texts))
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        if len(batch) > 1:
            log.debug("micro-batched %d requests (%d inputs)", len(batch), len(texts))
        offset = 0
        for job in batch:
            rows = np.ascontiguousarray(vectors[offset : offset + len(job.texts)])
            offset += len(job.texts)
            if not job.future.done():
                job.future.set_result(rows)

    async def _embed_in_slices(self, thread: RuntimeThread, texts: list[str], batch: list[_Job]) -> Vectors:
        input_type = batch[0].input_type
        parts = []
        for start in range(0, len(texts), self._slice_texts):
            if start and input_type == "passage":
                # a question that arrived meanwhile waits one slice, not the whole batch
                while any(job.input_type == "query" for job in self._pending):
                    await self._run_batch(thread, self._take_batch())
            if start and all(job.future.done() for job in batch):
                # the requests timed out or their server stopped: the rest of the batch would be computed for nobody
                raise _RequestersGone
            parts.append(await thread.submit(self._runtime.embed, texts[start : start + self._slice_texts], input_type))
        return parts[0] if len(parts) == 1 else np.vstack(parts)
