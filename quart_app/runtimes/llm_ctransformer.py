"""The ctransformer backend: legacy GGML models (GPT-2, LLaMA v1/v2 ggml files, ...) via ctransformers.

ctransformers 0.2.27 cannot read current GGUF files; it is kept for operators with old GGML model files.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

from appliance.cpu_limit import runtime_threads
from appliance.llm_config import CTransformerConfig
from quart_app.runtimes.code_fences import close_fences
from quart_app.runtimes.errors import LlmClosedError, LlmUnavailableError
from quart_app.runtimes.llm_backend import cut_at_stop
from quart_app.runtimes.llm_thread_stream import iterate_in_thread
from quart_app.runtimes.repetition import stop_repeating

log = logging.getLogger(__name__)


class CTransformerBackend:
    """Create once per process; calls queue behind one lock like the llama backend."""

    name = "ctransformer"

    def __init__(self, model_path: Path, config: CTransformerConfig) -> None:
        try:
            from ctransformers import AutoModelForCausalLM
        except ImportError:
            raise LlmUnavailableError(
                "llm: ctransformer needs ctransformers; install the extra: pip install"
                " 'context-chat-backend-appliance[legacy]' (or choose another llm backend)"
            ) from None
        self._config = config
        try:
            self._llm: Any = AutoModelForCausalLM.from_pretrained(
                str(model_path),
                model_type=config.model_type,
                local_files_only=True,
                context_length=config.n_ctx,
                threads=runtime_threads(config.threads) or -1,
                gpu_layers=config.gpu_layers,
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise LlmUnavailableError(
                f"llm: ctransformer cannot load {model_path} as a {config.model_type!r} GGML model: {exc}"
            ) from exc
        self._queue = asyncio.Lock()
        self._model_lock = threading.Lock()
        self._closed = False
        log.info("ctransformer backend ready: model %s (%s), n_ctx %d", model_path.name, config.model_type, self.n_ctx)

    @property
    def n_ctx(self) -> int:
        return self._config.n_ctx

    @property
    def max_tokens(self) -> int:
        return self._config.max_tokens

    def count_tokens(self, text: str) -> int:
        """The model's own tokenizer (from the GGML file's vocabulary)."""
        self._check_open()
        return len(self._llm.tokenize(text))

    def plain_text(self, text: str) -> str:
        """As it is: ctransformers' tokenizers read no control tokens from text (the template's are plain text too)."""
        return text

    def _pieces(self, prompt: str, stop: Sequence[str]) -> Generator[str, None, None]:
        yield from self._prefill(self._llm.tokenize(prompt))
        # reset=True keeps the evaluated prefix the prompt shares, so this call evaluates the prompt's last token only
        pieces: Iterator[str] = self._llm(
            prompt,
            max_new_tokens=self.max_tokens,
            temperature=self._config.temperature,
            stop=[s for s in stop if s] or None,
            stream=True,
            reset=True,
        )
        for piece in pieces:
            self._check_open()
            yield piece

    def _prefill(self, tokens: list[int]) -> Iterator[str]:
        """Evaluate the prompt but its last token a batch at a time, yielding "" after each batch: ctransformers'
        own call evaluates the whole prompt in one C call that no stop or cancel interrupts (minutes on CPU for a 7B
        GGML model). Its batches are the same size (Config.batch_size), so the steps cost nothing more."""
        llm = self._llm
        # the prefix the previous prompt shares with this one stays evaluated, as in ctransformers' own call
        rest = llm.prepare_inputs_for_generation(tokens, reset=True)
        step = llm.config.batch_size
        for start in range(0, len(rest) - 1, step):
            self._check_open()  # aclose() waits for this thread: it ends within a batch, not after the answer
            llm.eval(rest[start : min(start + step, len(rest) - 1)])
            yield ""

    async def stream(self, prompt: str, user_id: str, stop: Sequence[str] = ()) -> AsyncGenerator[str, None]:
        """Pieces as ctransformers produces them (the prompt evaluated batch by batch, so a stop or a cancel is seen
        within one batch or one token), ended where the answer starts repeating itself."""
        self._check_open()
        async with self._queue:
            self._check_open()  # closed while this request waited in line
            # a small legacy model loops as SmolLM2 does: ended at its first repeat, a code block left open closed,
            # as in the llama backend
            async for piece in iterate_in_thread(
                lambda: close_fences(stop_repeating(self._pieces(prompt, stop), self.name, prompt)), self._model_lock
            ):
                yield piece

    async def generate(self, prompt: str, user_id: str, stop: Sequence[str] = ()) -> str:
        parts = [piece async for piece in self.stream(prompt, user_id, stop)]
        return cut_at_stop("".join(parts), stop).strip()

    def _check_open(self) -> None:
        if self._closed:
            raise LlmClosedError("the ctransformer backend was used after close(); create a new one")

    async def aclose(self) -> None:
        """Refuse new requests and end the one in progress at its next batch or token; returns once it has ended."""
        self._closed = True
        async with self._queue:
            pass  # the answer in progress ends within one step (_check_open) and frees the queue
