"""The llama backend on the real SmolLM2 GGUF: answers, streams, max tokens, stop strings, serialised calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from llm_fixtures import CHATML, load_smollm2

from quart_app.runtimes.errors import LlmClosedError
from quart_app.runtimes.llm_backend import cut_at_stop
from quart_app.runtimes.llm_llama import LlamaBackend
from quart_app.services.prompt_packing import render

pytestmark = pytest.mark.slow

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
