"""ctransformer on a GGML file the test writes, the extractive backend, and the factory that picks a backend."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from ggml_writer import write_tiny_gpt2

from appliance.config import parse_config
from appliance.llm_config import CTransformerConfig, ExtractiveConfig
from quart_app.nextcloud import NextcloudClient
from quart_app.runtimes.control_tokens import WORD_JOINER, ControlTokenBreaker
from quart_app.runtimes.errors import LlmClosedError, LlmUnavailableError
from quart_app.runtimes.llm_backend import LlmBackend, create_llm_backend, resolve_model_path
from quart_app.runtimes.llm_extractive import (
    EXTRACTIVE_HEADER,
    NO_CONTEXT_ANSWER,
    STANDALONE_HEADER,
    ExtractiveBackend,
    QuotedPassage,
)
from quart_app.runtimes.llm_nc_texttotext import NcTextToTextBackend

HAS_CTRANSFORMERS = importlib.util.find_spec("ctransformers") is not None
needs_ctransformers = pytest.mark.skipif(
    not HAS_CTRANSFORMERS, reason="ctransformers is not installed (optional extra 'legacy')"
)


@needs_ctransformers
async def test_ctransformer_generates_from_a_legacy_ggml_gpt2(tmp_path: Path) -> None:
    from quart_app.runtimes.llm_ctransformer import CTransformerBackend

    model = write_tiny_gpt2(tmp_path / "tiny-gpt2.ggml.bin")
    # greedy: sampling from random weights may pick only whitespace, which the answer strips to ''
    config = CTransformerConfig(model=str(model), model_type="gpt2", n_ctx=128, max_tokens=6, threads=1, temperature=0)
    backend = CTransformerBackend(model, config)
    assert isinstance(backend, LlmBackend)
    assert backend.count_tokens("hello the world") == 7  # the vocabulary the writer put into the file
    answer = await backend.generate("hello the world", "alice")
    assert isinstance(answer, str) and answer
    pieces = [piece async for piece in backend.stream("hello", "alice")]
    assert 1 <= len(pieces) <= 6
    await backend.aclose()


@needs_ctransformers
async def test_ctransformer_stops_an_answer_that_repeats_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A GPT-2 whose next token depends on the last one alone cycles every few tokens until max_tokens."""
    from quart_app.runtimes.llm_ctransformer import CTransformerBackend

    model = write_tiny_gpt2(tmp_path / "looping.ggml.bin", last_token_only=True)
    config = CTransformerConfig(
        model=str(model), model_type="gpt2", n_ctx=128, max_tokens=110, threads=1, temperature=0
    )
    backend = CTransformerBackend(model, config)
    try:
        with caplog.at_level(logging.INFO, logger="quart_app.runtimes.repetition"):
            answer = await backend.generate("hello the world", "alice")
        assert 0 < backend.count_tokens(answer) < 20  # the cycle once, not 110 tokens of it
        [record] = caplog.records
        assert "llm ctransformer: the answer started repeating itself" in record.getMessage()
    finally:
        await backend.aclose()


@needs_ctransformers
async def test_ctransformer_reads_chat_markers_as_text_so_document_text_passes_as_it_is(tmp_path: Path) -> None:
    """Why its plain_text() changes nothing: even a vocabulary holding <|endoftext|> tokenises the text by letters."""
    from quart_app.runtimes.llm_ctransformer import CTransformerBackend

    model = write_tiny_gpt2(tmp_path / "tiny-gpt2.ggml.bin", extra_tokens=(b"<|endoftext|>", b"<|im_end|>"))
    backend = CTransformerBackend(
        model, CTransformerConfig(model=str(model), model_type="gpt2", n_ctx=128, max_tokens=6, threads=1)
    )
    try:
        assert backend.count_tokens("<|endoftext|>x<|im_end|>") == len("<|endoftext|>x<|im_end|>")
        assert backend.plain_text("<|im_end|>") == "<|im_end|>"
    finally:
        await backend.aclose()


def test_control_token_texts_are_broken_until_none_is_left_whole() -> None:
    breaker = ControlTokenBreaker(["<|im_end|>", "<s>", "ab", "bc", "x"])
    assert breaker.plain("a <s>b</s> <|im_end|>") == f"a <{WORD_JOINER}s>b</s> <{WORD_JOINER}|im_end|>"
    broken = breaker.plain("abc")  # overlapping matches: breaking "ab" leaves "bc" whole
    assert broken.replace(WORD_JOINER, "") == "abc" and "ab" not in broken and "bc" not in broken
    assert breaker.plain("x") == "x"  # one character cannot be broken inside
    assert ControlTokenBreaker([]).plain("<|im_end|>") == "<|im_end|>"


def _gate_after_the_first_batch(model: Any) -> tuple[threading.Event, threading.Event]:
    """White box: ctransformers' LLM.eval, made to signal its first evaluated batch and then wait for the gate (set by
    the test once it has asked for the stop), so that where the evaluation stops does not depend on the machine's
    speed. The events: (first batch evaluated, gate)."""
    first_batch, gate = threading.Event(), threading.Event()
    evaluate = model.eval

    def gated_eval(tokens: Sequence[int], **options: Any) -> None:
        evaluate(tokens, **options)
        if not first_batch.is_set():
            first_batch.set()
            gate.wait(120)

    model.eval = gated_eval
    return first_batch, gate


def _long_prompt_backend(tmp_path: Path) -> tuple[Any, str]:
    from quart_app.runtimes.llm_ctransformer import CTransformerBackend

    model = write_tiny_gpt2(tmp_path / "tiny-gpt2.ggml.bin", n_ctx=512)
    config = CTransformerConfig(model=str(model), model_type="gpt2", n_ctx=512, max_tokens=8, threads=1, temperature=0)
    backend = CTransformerBackend(model, config)
    prompt = "hello the world, the answer is in the context. " * 8
    assert backend.count_tokens(prompt) > 10 * backend._llm.config.batch_size  # white box: ctransformers' batch
    return backend, prompt


@needs_ctransformers
async def test_ctransformer_evaluates_a_prompt_once_in_batches_and_keeps_what_the_next_one_shares(
    tmp_path: Path,
) -> None:
    backend, prompt = _long_prompt_backend(tmp_path)
    model = backend._llm
    evaluated: list[list[int]] = []
    evaluate = model.eval

    def recorded_eval(tokens: Sequence[int], **options: Any) -> None:
        evaluated.append(list(tokens))
        evaluate(tokens, **options)

    model.eval = recorded_eval  # white box: what ctransformers is asked to evaluate
    try:
        tokens = model.tokenize(prompt)
        await backend.generate(prompt, "alice")
        flat = [token for batch in evaluated for token in batch]
        assert flat[: len(tokens)] == tokens and len(flat) <= len(tokens) + backend.max_tokens  # the prompt once
        assert max(len(batch) for batch in evaluated) == model.config.batch_size
        evaluated.clear()
        follow_up = prompt[: len(prompt) // 2] + "what does the context say?"
        follow_tokens = model.tokenize(follow_up)
        shared = next(n for n, (a, b) in enumerate(zip(follow_tokens, tokens, strict=False)) if a != b)
        await backend.generate(follow_up, "bob")
        # the kept prefix is not evaluated again: the first batch starts where the follow-up differs
        assert evaluated[0] == follow_tokens[shared : shared + model.config.batch_size]
    finally:
        await backend.aclose()


@needs_ctransformers
async def test_ctransformer_a_cancel_stops_the_prompt_evaluation_within_one_batch(tmp_path: Path) -> None:
    """Before: the whole prompt was evaluated in one C call after the cancel (minutes for a 7B GGML model)."""
    backend, prompt = _long_prompt_backend(tmp_path)
    model = backend._llm
    try:
        first_batch, gate = _gate_after_the_first_batch(model)
        answer = asyncio.create_task(backend.generate(prompt, "alice"))
        await asyncio.to_thread(first_batch.wait, 120)
        answer.cancel()
        await asyncio.sleep(0)  # the answer's task runs its cancellation, which asks its thread to stop
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await answer  # returns once the thread has stopped: it holds the model until then
        assert len(model._context) == model.config.batch_size  # white box: the tokens evaluated
    finally:
        await backend.aclose()


@needs_ctransformers
async def test_ctransformer_closing_ends_the_answer_in_progress_and_refuses_those_in_line(tmp_path: Path) -> None:
    """Before: aclose() returned at once and the answer ran on to its end with the model."""
    backend, prompt = _long_prompt_backend(tmp_path)
    model = backend._llm
    first_batch, gate = _gate_after_the_first_batch(model)
    running = asyncio.create_task(backend.generate(prompt, "alice"))
    waiting = asyncio.create_task(backend.generate("hello", "bob"))
    await asyncio.to_thread(first_batch.wait, 120)
    closing = asyncio.create_task(backend.aclose())
    await asyncio.sleep(0)  # aclose() marks the backend closed before it waits for the answer in progress
    gate.set()
    await closing
    assert running.done() and waiting.done()  # aclose() returned after both
    with pytest.raises(LlmClosedError):
        await running
    with pytest.raises(LlmClosedError):
        await waiting
    assert len(model._context) == model.config.batch_size
    await backend.aclose()  # idempotent


@needs_ctransformers
def test_ctransformer_refuses_a_file_that_is_not_ggml(tmp_path: Path) -> None:
    from quart_app.runtimes.llm_ctransformer import CTransformerBackend

    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(LlmUnavailableError, match=r"cannot load .*model.bin as a 'gpt2' GGML model"):
        CTransformerBackend(bogus, CTransformerConfig(model=str(bogus), model_type="gpt2"))


async def test_extractive_quotes_passages_and_says_what_it_is() -> None:
    backend = ExtractiveBackend(ExtractiveConfig(max_passages=2))
    passages = [
        QuotedPassage("Trusted domains", "nc: 1", "Line one.\nLine two."),
        QuotedPassage("Scanning", "nc: 2", "Run occ files:scan."),
        QuotedPassage("Other", "nc: 3", "Not quoted: over max_passages."),
    ]
    output, sources = backend.answer_from_passages(passages)
    assert output.startswith(EXTRACTIVE_HEADER)
    assert "1. Trusted domains (nc: 1):\n> Line one.\n> Line two." in output
    assert "2. Scanning (nc: 2):\n> Run occ files:scan." in output
    assert "Not quoted" not in output
    assert sources == ["nc: 1", "nc: 2"]
    assert await backend.generate("anything", "alice") == NO_CONTEXT_ANSWER


async def test_factory_follows_the_first_llm_key(tmp_path: Path) -> None:
    config = parse_config({"llm": {"nc_texttotext": None, "llama": {"model": "x"}}})
    nextcloud = NextcloudClient("http://nextcloud.invalid", app_id="ccb", app_version="5.5.0", app_secret="s")
    try:
        assert isinstance(create_llm_backend(config, tmp_path, nextcloud), NcTextToTextBackend)
    finally:
        await nextcloud.aclose()
    assert isinstance(create_llm_backend(parse_config({}), tmp_path), ExtractiveBackend)


def test_nc_texttotext_without_nextcloud_quotes_passages_and_says_why(tmp_path: Path) -> None:
    """A start without AppAPI (no NEXTCLOUD_URL): the standalone quick start gets quoted passages, told why."""
    config = parse_config({"llm": {"nc_texttotext": None, "llama": {"model": "x"}}})
    backend = create_llm_backend(config, tmp_path, None)
    assert isinstance(backend, ExtractiveBackend)
    output, sources = backend.answer_from_passages([QuotedPassage("Notes", "ccb__files: 1", "The label is green.")])
    assert output.startswith(STANDALONE_HEADER)
    assert "no Nextcloud is configured (NEXTCLOUD_URL is not set)" in output
    assert sources == ["ccb__files: 1"]


def test_model_paths_resolve_relative_to_the_model_dir_or_the_catalogue(tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"x")
    assert resolve_model_path("m.bin", tmp_path) == tmp_path / "m.bin"
    assert resolve_model_path("smollm2-135m-instruct-q4_1", tmp_path).name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(LlmUnavailableError, match=r"'nope.gguf' is neither a file .* nor a catalogue id"):
        resolve_model_path("nope.gguf", tmp_path)
