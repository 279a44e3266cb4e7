"""The llama backend on the real SmolLM2 GGUF: answers, streams, max tokens, stop strings, serialised calls, a
prompt evaluated batch by batch (a cancel stops it within one), requests still in line when it closes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import yaml
from llm_fixtures import CHATML, load_smollm2, smollm2_path
from retrieval_corpus import TRUSTED_DOMAINS

from appliance.config import load_config
from appliance.config_files import CONFIGS_DIR
from appliance.llm_config import LlamaConfig
from quart_app.runtimes.errors import LlmClosedError
from quart_app.runtimes.llm_backend import cut_at_stop
from quart_app.runtimes.llm_llama import CPU_PREFILL_STEP, LlamaBackend
from quart_app.services.answer import prompt_templates
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


async def test_streams_the_answer(llama: LlamaBackend) -> None:
    """One sentence here: the stream hands text on a sentence or line at a time (test_llm_llama_repetition.py)."""
    pieces = [piece async for piece in llama.stream(PROMPT, "alice", stop=["<|im_end|>"])]
    assert pieces
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


async def test_the_prompt_is_fed_as_llama_cpp_tokenises_its_text(llama: LlamaBackend) -> None:
    """Tokenised here and evaluated step by step, the prompt is the same token list as llama.cpp's own call from the
    text builds (BOS included once)."""
    await llama.generate(PROMPT, "alice", stop=["<|im_end|>"])
    model = llama._llm  # white box: the tokens in the model's context
    fed = [int(token) for token in model.input_ids[: llama.count_tokens(PROMPT)]]
    model.reset()
    completion = model.create_completion(PROMPT, max_tokens=1, temperature=0.0)
    assert completion["usage"]["prompt_tokens"] == len(fed)
    assert [int(token) for token in model.input_ids[: len(fed)]] == fed


async def test_the_shipped_llama_section_speaks_its_models_chat_format_and_ends_its_answer() -> None:
    """`llm: llama` as the shipped configs set it up (SmolLM2-Instruct, a ChatML model, template auto: the GGUF's own)
    ends the answer at the model's end of turn: in the plain-text template it ran on to max_tokens, the same sentence
    over and over (3 min on CPU)."""
    cpu, gpu = (load_config(CONFIGS_DIR / f"config.{variant}.yaml", environ={}) for variant in ("cpu", "gpu"))
    sections = [yaml.safe_load((CONFIGS_DIR / f"config.{v}.yaml").read_text())["llm"]["llama"] for v in ("cpu", "gpu")]
    shipped = [LlamaConfig.model_validate(section) for section in sections]
    assert cpu.llm_backend == gpu.llm_backend == "nc_texttotext"  # llama is what the admin switches to
    assert shipped[0].template == shipped[1].template == "auto"
    assert shipped[0].model == "smollm2-135m-instruct-q4_1"
    # greedy and a short limit: an answer that does not end on its own uses all of it
    config = shipped[0].model_copy(update={"temperature": 0.0, "max_tokens": 64, "n_threads": 1})
    backend = LlamaBackend(smollm2_path(), config)
    try:
        templates = prompt_templates(config, backend)
        assert templates.template.startswith("<|im_start|>system\n") and templates.end_separator == "<|im_end|>"
        context = f"{TRUSTED_DOMAINS[0]}:\n\n{TRUSTED_DOMAINS[1]}"
        prompt = render(templates.template, context, "Which file lists the trusted domains?")
        answer = await backend.generate(prompt, "alice", [templates.end_separator])
        assert "config.php" in answer
        assert backend.count_tokens(answer) - 1 < 64
    finally:
        await backend.aclose()


async def test_a_model_that_cannot_drop_the_end_of_its_cache_starts_over() -> None:
    """Recurrent GGUFs (Mamba, RWKV) refuse a partial cache removal; the prompts after the first must still work."""
    backend = load_smollm2(n_ctx=512, max_tokens=8)
    try:
        context = backend._llm._ctx  # white box: the cache as a recurrent model's
        remove = context.kv_cache_seq_rm
        context.kv_cache_seq_rm = lambda seq, p0, p1: remove(seq, p0, p1) if p0 <= 0 else False
        other = render(CHATML, "Rome is the capital of Italy.", "What is the capital of Italy?")
        answers = [await backend.generate(prompt, "alice", ["<|im_end|>"]) for prompt in (PROMPT, other, PROMPT)]
        assert "Paris" in answers[0] and "Rome" in answers[1] and answers[2] == answers[0]
    finally:
        await backend.aclose()


def _long_prompt(backend: LlamaBackend, steps: int) -> str:
    context = " ".join(f"Fact {n}: the shed number {n} is painted green." for n in range(120))
    prompt = render(CHATML, context, "Which colour is shed 7?")
    assert backend.count_tokens(prompt) > steps * CPU_PREFILL_STEP
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


async def test_a_cancel_stops_the_prompt_evaluation_within_one_step() -> None:
    backend = load_smollm2(n_ctx=2048, max_tokens=8)  # n_batch 512: the step on CPU is smaller
    try:
        prompt = _long_prompt(backend, 15)
        model, first_batch = _signal_first_batch(backend)
        answer = asyncio.create_task(backend.generate(prompt, "alice", ["<|im_end|>"]))
        await asyncio.to_thread(first_batch.wait, 120)
        answer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await answer  # returns once the thread has stopped: it holds the model until then
        # one prompt evaluated at once would be all in the cache by now
        assert model.n_tokens <= 3 * CPU_PREFILL_STEP
    finally:
        await backend.aclose()


async def test_closing_ends_the_answer_in_progress_and_refuses_those_in_line() -> None:
    backend = load_smollm2(n_ctx=2048, max_tokens=8)
    prompt = _long_prompt(backend, 15)
    model, first_batch = _signal_first_batch(backend)
    running = asyncio.create_task(backend.generate(prompt, "alice", ["<|im_end|>"]))
    waiting = asyncio.create_task(backend.generate(PROMPT, "bob", ["<|im_end|>"]))
    await asyncio.to_thread(first_batch.wait, 120)
    await backend.aclose()
    with pytest.raises(LlmClosedError):
        await running
    with pytest.raises(LlmClosedError):
        await waiting
    assert model.n_tokens <= 3 * CPU_PREFILL_STEP  # stopped within a batch, not after the whole prompt and the answer
