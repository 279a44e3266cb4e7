"""The llama backend on the real SmolLM2 GGUF: answers, streams, max tokens, stop strings, serialised calls, a
prompt evaluated batch by batch (a cancel stops it within one), requests still in line when it closes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from llm_fixtures import CHATML, load_smollm2

from quart_app.runtimes.errors import LlmClosedError
from quart_app.runtimes.llm_backend import cut_at_stop
from quart_app.runtimes.llm_llama import LlamaBackend
from quart_app.services.prompt_packing import render

pytestmark = pytest.mark.slow

BATCH = 32
PROMPT = render(CHATML, "Paris is the capital of France.", "What is the capital of France?")


@pytest.fixture(scope="module")
async def llama() -> AsyncIterator[LlamaBackend]:
    backend = load_smollm2(max_tokens=16)
    yield backend
    await backend.aclose()


async def test_generates_an_answer_within_max_tokens(llama: LlamaBackend) -> None:
    answer = await llama.generate(PROMPT, "alice", stop=["<|im_end|>"])
    assert answer
    assert "Paris" in answer
    assert llama.count_tokens(answer) - 1 <= 16
    assert "<|im_end|>" not in answer


async def test_streams_tokens(llama: LlamaBackend) -> None:
    pieces = [piece async for piece in llama.stream(PROMPT, "alice", stop=["<|im_end|>"])]
    assert len(pieces) >= 2
    assert "".join(pieces).strip() == await llama.generate(PROMPT, "alice", stop=["<|im_end|>"])


async def test_concurrent_calls_are_serialised_and_all_answer(llama: LlamaBackend) -> None:
    answers = await asyncio.gather(*(llama.generate(PROMPT, f"user{n}", ["<|im_end|>"]) for n in range(3)))
    assert len(set(answers)) == 1 and answers[0]  # temperature 0: same prompt, same answer, no interleaving


async def test_an_abandoned_stream_frees_the_model(llama: LlamaBackend) -> None:
    stream = llama.stream(PROMPT, "alice")
    assert await anext(stream)
    await stream.aclose()
    assert await asyncio.wait_for(llama.generate(PROMPT, "bob", ["<|im_end|>"]), timeout=120)


def test_cut_at_stop() -> None:
    assert cut_at_stop("a<|im_end|>b</s>c", ["</s>", "<|im_end|>"]) == "a"
    assert cut_at_stop("abc", ["", "x"]) == "abc"


async def test_use_after_close_is_a_named_error() -> None:
    backend = load_smollm2(n_ctx=256)
    await backend.aclose()
    await backend.aclose()
    with pytest.raises(LlmClosedError, match="used after close"):
        backend.count_tokens("x")


async def test_the_answer_is_the_one_llama_cpp_gives_for_the_prompt_text(llama: LlamaBackend) -> None:
    """The prompt is tokenised and evaluated batch by batch here; llama.cpp's own call from the text agrees."""
    answer = await llama.generate(PROMPT, "alice", stop=["<|im_end|>"])
    raw = llama._llm  # the model itself: its own completion of the prompt text, from an empty cache
    raw.reset()
    completion = raw.create_completion(PROMPT, max_tokens=16, temperature=0.0, stop=["<|im_end|>"])
    assert answer == completion["choices"][0]["text"].strip()


def _long_prompt(backend: LlamaBackend, batches: int) -> str:
    context = " ".join(f"Fact {n}: the shed number {n} is painted green." for n in range(120))
    prompt = render(CHATML, context, "Which colour is shed 7?")
    assert backend.count_tokens(prompt) > batches * BATCH
    return prompt


def _signal_first_batch(backend: LlamaBackend) -> tuple[Any, threading.Event]:
    """The model itself (white box: how far llama.cpp got through the prompt), and an event set after its first
    evaluated batch."""
    model = backend._llm
    first_batch = threading.Event()
    evaluate = model.eval

    def counted_eval(tokens: Sequence[int]) -> Any:
        result = evaluate(tokens)
        first_batch.set()
        return result

    model.eval = counted_eval
    return model, first_batch


async def test_a_cancel_stops_the_prompt_evaluation_within_one_batch() -> None:
    backend = load_smollm2(n_ctx=2048, max_tokens=8, n_batch=BATCH)
    try:
        prompt = _long_prompt(backend, 20)
        model, first_batch = _signal_first_batch(backend)
        answer = asyncio.create_task(backend.generate(prompt, "alice", ["<|im_end|>"]))
        await asyncio.to_thread(first_batch.wait, 120)
        answer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await answer  # returns once the thread has stopped: it holds the model until then
        # one prompt evaluated at once would be all in the cache by now
        assert model.n_tokens <= 3 * BATCH
    finally:
        await backend.aclose()


async def test_closing_ends_the_answer_in_progress_and_refuses_those_in_line() -> None:
    backend = load_smollm2(n_ctx=2048, max_tokens=8, n_batch=BATCH)
    prompt = _long_prompt(backend, 20)
    model, first_batch = _signal_first_batch(backend)
    running = asyncio.create_task(backend.generate(prompt, "alice", ["<|im_end|>"]))
    waiting = asyncio.create_task(backend.generate(PROMPT, "bob", ["<|im_end|>"]))
    await asyncio.to_thread(first_batch.wait, 120)
    await backend.aclose()
    with pytest.raises(LlmClosedError):
        await running
    with pytest.raises(LlmClosedError):
        await waiting
    assert model.n_tokens <= 3 * BATCH  # stopped within a batch, not after the whole prompt and the answer
