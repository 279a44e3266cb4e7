"""The scheduler that runs the real MiniLM runtime on one thread and micro-batches concurrent requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator

import numpy as np
import pytest

from quart_app.embedder.errors import EmbedderClosedError
from quart_app.embedder.onnx_runtime import OnnxEmbeddingRuntime
from quart_app.embedder.runtime import InputType, Vectors
from quart_app.embedder.scheduler import EmbeddingScheduler


class RecordingRuntime:
    """The real runtime, recording how many texts each embed() call got."""

    def __init__(self, inner: OnnxEmbeddingRuntime) -> None:
        self.inner = inner
        self.calls: list[tuple[int, InputType]] = []

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def embed(self, texts: list[str], input_type: InputType) -> Vectors:
        self.calls.append((len(texts), input_type))
        return self.inner.embed(texts, input_type)

    def count_tokens(self, texts: list[str], input_type: InputType = "passage") -> list[int]:
        return self.inner.count_tokens(texts, input_type)


TEXTS = [f"Request {i} asks about subject {'abcdef'[i]}." for i in range(6)]


async def test_concurrent_requests_share_runtime_calls_within_the_token_budget(
    minilm_runtime: OnnxEmbeddingRuntime,
) -> None:
    runtime = RecordingRuntime(minilm_runtime)
    scheduler = EmbeddingScheduler(runtime, batch_tokens=25)
    await scheduler.start()
    try:
        # 10 tokens per request, budget 25: at most two requests per runtime call
        results = await asyncio.gather(*(scheduler.embed([t], "passage", 10) for t in TEXTS))
    finally:
        await scheduler.close()
    assert runtime.calls == [(2, "passage"), (2, "passage"), (2, "passage")]
    np.testing.assert_allclose(np.vstack(results), minilm_runtime.embed(TEXTS, "passage"), atol=1e-5)


async def test_query_and_passage_requests_are_not_mixed_and_queries_go_first(
    minilm_runtime: OnnxEmbeddingRuntime,
) -> None:
    runtime = RecordingRuntime(minilm_runtime)
    scheduler = EmbeddingScheduler(runtime, batch_tokens=10_000)
    await scheduler.start()
    kinds: list[InputType] = ["passage", "passage", "query", "query", "passage"]
    try:
        await asyncio.gather(*(scheduler.embed([t], kind, 10) for t, kind in zip(TEXTS, kinds, strict=False)))
    finally:
        await scheduler.close()
    assert runtime.calls == [(2, "query"), (3, "passage")]


async def test_use_after_close_raises_a_named_error(minilm_runtime: OnnxEmbeddingRuntime) -> None:
    scheduler = EmbeddingScheduler(minilm_runtime, batch_tokens=100)
    with pytest.raises(EmbedderClosedError, match="not running; call start"):
        await scheduler.embed(["x"], "passage", 3)
    await scheduler.start()
    await scheduler.close()
    await scheduler.close()  # idempotent
    with pytest.raises(EmbedderClosedError, match="do not use it after close"):
        await scheduler.count_tokens(["x"], "passage")
    with pytest.raises(EmbedderClosedError, match="was closed; create a new one"):
        await scheduler.start()


class BlockedRuntime(RecordingRuntime):
    """Blocks inside embed() until the test releases it, like a huge batch still running at shutdown."""

    def __init__(self, inner: OnnxEmbeddingRuntime) -> None:
        super().__init__(inner)
        self.entered = threading.Event()
        self.release = threading.Event()

    def embed(self, texts: list[str], input_type: InputType) -> Vectors:
        self.entered.set()
        self.release.wait()
        return super().embed(texts, input_type)


async def test_close_does_not_wait_for_a_busy_runtime(
    minilm_runtime: OnnxEmbeddingRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = BlockedRuntime(minilm_runtime)
    scheduler = EmbeddingScheduler(runtime, batch_tokens=100, shutdown_timeout_s=0.05)
    await scheduler.start()
    request = asyncio.ensure_future(scheduler.embed(["busy"], "passage", 3))
    await asyncio.to_thread(runtime.entered.wait)
    try:
        await scheduler.close()
        # close() returned although the runtime is still inside embed()
        assert not runtime.release.is_set() and runtime.calls == []
        assert "is still busy after 0 s; shutting down without waiting for it" in caplog.text
        with pytest.raises(EmbedderClosedError, match="shut down mid-batch; retry"):
            await request
    finally:
        runtime.release.set()


async def test_a_big_request_runs_in_slices(minilm_runtime: OnnxEmbeddingRuntime) -> None:
    runtime = RecordingRuntime(minilm_runtime)
    scheduler = EmbeddingScheduler(runtime, batch_tokens=100_000, slice_texts=4)
    texts = [f"Line {i} of a long request." for i in range(10)]
    await scheduler.start()
    try:
        vectors = await scheduler.embed(texts, "passage", 90)
    finally:
        await scheduler.close()
    assert runtime.calls == [(4, "passage"), (4, "passage"), (2, "passage")]
    np.testing.assert_allclose(vectors, minilm_runtime.embed(texts, "passage"), atol=1e-5)


PASSAGES = [f"Line {i} of a long document." for i in range(12)]


@contextlib.asynccontextmanager
async def big_batch_in_its_first_slice(
    minilm_runtime: OnnxEmbeddingRuntime,
) -> AsyncIterator[tuple[BlockedRuntime, EmbeddingScheduler, asyncio.Future[Vectors]]]:
    """PASSAGES as one request in slices of 4, the runtime held inside the first slice until the test releases it."""
    runtime = BlockedRuntime(minilm_runtime)
    scheduler = EmbeddingScheduler(runtime, batch_tokens=100_000, slice_texts=4)
    await scheduler.start()
    try:
        batch = asyncio.ensure_future(scheduler.embed(PASSAGES, "passage", 120))
        await asyncio.to_thread(runtime.entered.wait)
        yield runtime, scheduler, batch
    finally:
        runtime.release.set()
        await scheduler.close()


async def test_a_question_waits_for_one_slice_of_a_big_passage_batch_not_all_of_it(
    minilm_runtime: OnnxEmbeddingRuntime,
) -> None:
    """The embedding worker's batches hold ~8,000 tokens; a user's question must not wait for all of them."""
    async with big_batch_in_its_first_slice(minilm_runtime) as (runtime, scheduler, batch):
        question = asyncio.ensure_future(scheduler.embed(["When is the review?"], "query", 6))
        await asyncio.sleep(0)  # one turn of the loop: the question's job is queued
        runtime.release.set()
        vectors, answer = await batch, await question
    assert runtime.calls == [(4, "passage"), (1, "query"), (4, "passage"), (4, "passage")]
    np.testing.assert_allclose(vectors, minilm_runtime.embed(PASSAGES, "passage"), atol=1e-5)
    np.testing.assert_allclose(answer, minilm_runtime.embed(["When is the review?"], "query"), atol=1e-5)


async def test_a_batch_whose_requests_are_all_gone_stops_after_the_slice_under_way(
    minilm_runtime: OnnxEmbeddingRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """A request that timed out (or whose server stopped) is cancelled; its later slices are not computed."""
    caplog.set_level(logging.INFO, logger="quart_app.embedder.scheduler")
    async with big_batch_in_its_first_slice(minilm_runtime) as (runtime, scheduler, gone):
        gone.cancel()
        runtime.release.set()
        # later requests are served behind the one slice that was under way, not behind the whole batch
        after = await scheduler.embed(["When is the review?"], "query", 6)
        await scheduler.embed(["A later document."], "passage", 5)
    assert gone.cancelled()
    assert runtime.calls == [(4, "passage"), (1, "query"), (1, "passage")]
    assert "stopped a batch of 12 inputs after a slice: every request waiting for it is gone" in caplog.text
    np.testing.assert_allclose(after, minilm_runtime.embed(["When is the review?"], "query"), atol=1e-5)
