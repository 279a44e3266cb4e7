"""The llama backend: a GGUF model run in-process by llama-cpp-python, one instance, calls serialised."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

from appliance.cpu_limit import runtime_threads
from appliance.llm_config import LlamaConfig
from quart_app.runtimes.chat_template import CHAT_TEMPLATE_KEY, ModelChatTemplate
from quart_app.runtimes.code_fences import close_fences
from quart_app.runtimes.control_tokens import ControlTokenBreaker
from quart_app.runtimes.errors import LlmClosedError, LlmError, LlmUnavailableError
from quart_app.runtimes.llm_backend import cut_at_stop
from quart_app.runtimes.llm_thread_stream import iterate_in_thread
from quart_app.runtimes.repetition import stop_repeating

log = logging.getLogger(__name__)

# prompt tokens evaluated between two chances to stop on CPU: a 2,500-token prompt took as long in steps of 64 as of
# 512 (SmolLM2, 13-14 s on one thread), and a large model's 512 tokens can outlast Docker's 10 s stop
CPU_PREFILL_STEP = 64


class LlamaBackend:
    """Create once per process (the model is loaded here); generate/stream queue behind one lock."""

    name = "llama"

    def __init__(self, model_path: Path, config: LlamaConfig) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise LlmUnavailableError(
                "llm: llama needs llama-cpp-python; install the extra: pip install 'context-chat-backend-appliance"
                "[llama]' (or choose another llm backend)"
            ) from None
        self._config = config
        try:
            self._llm: Any = Llama(
                model_path=str(model_path),
                n_ctx=config.n_ctx,
                n_batch=config.n_batch,
                n_threads=runtime_threads(config.n_threads) or None,
                n_gpu_layers=config.n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise LlmUnavailableError(f"llm: llama cannot load the GGUF model {model_path}: {exc}") from exc
        self._control = ControlTokenBreaker(_control_token_texts(self._llm))
        self._chat_template = self._model_chat_template(model_path)
        self._queue = asyncio.Lock()  # waiting requests hold no thread
        self._model_lock = threading.Lock()  # the model itself never runs twice at once, even after a cancel
        # prompt packing tokenises in worker threads; close() must not free the vocabulary under one of them
        self._tokenizer_lock = threading.Lock()
        self._closed = False
        log.info("llama backend ready: model %s, n_ctx %d, max_tokens %d", model_path.name, self.n_ctx, self.max_tokens)

    @property
    def n_ctx(self) -> int:
        return int(self._llm.n_ctx())

    @property
    def max_tokens(self) -> int:
        return self._config.max_tokens

    def count_tokens(self, text: str) -> int:
        """The model's own tokenizer, BOS included, as the prompt is fed to it; callable from any thread."""
        with self._tokenizer_lock:
            self._check_open()
            return len(self._tokens(text))

    def plain_text(self, text: str) -> str:
        """`text` with this vocabulary's control tokens broken: the prompt is tokenised with special=True for the
        template's <|im_start|> and the like, which would read a document's as control tokens too."""
        return self._control.plain(text)

    def chat_template(self) -> ModelChatTemplate | None:
        """The chat template the GGUF carries (None: it carries none)."""
        return self._chat_template

    def _model_chat_template(self, model_path: Path) -> ModelChatTemplate | None:
        text = self._llm.metadata.get(CHAT_TEMPLATE_KEY)
        if not text:
            return None
        # an empty prompt tokenised is the BOS the tokenizer adds to every prompt, or nothing
        adds_bos = bool(self._llm.tokenize(b"", add_bos=True, special=True))
        bos, eos = (self._token_text(token) for token in (self._llm.token_bos(), self._llm.token_eos()))
        return ModelChatTemplate(f"{model_path.name} ({CHAT_TEMPLATE_KEY})", text, "" if adds_bos else bos, eos)

    def _token_text(self, token: int) -> str:
        """A token's text as the template writes it ("" for none: llama.cpp's id -1)."""
        return "" if token < 0 else self._llm.detokenize([token], special=True).decode("utf-8", "replace")

    def _tokens(self, text: str) -> list[int]:
        """The model's tokens of `text` as the prompt is fed to it (BOS included)."""
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def _pieces(self, prompt: str, stop: Sequence[str]) -> Generator[str, None, None]:
        tokens = self._tokens(prompt)
        yield from self._prefill(tokens)
        # a token list is completed as it is (no BOS added again): the prefix _prefill evaluated is reused
        chunks = self._llm.create_completion(
            tokens,
            max_tokens=self.max_tokens,
            temperature=self._config.temperature,
            stop=[s for s in stop if s],
            stream=True,
        )
        for chunk in chunks:
            self._check_open()
            text = chunk["choices"][0]["text"]
            if text:
                yield text

    def _prefill(self, tokens: list[int]) -> Iterator[str]:
        """Evaluate the prompt but its last token a step at a time, yielding "" after each step: a stop or a
        cancelled request is seen within one step, not after the whole prompt (minutes on CPU for a large model).
        The part of the KV cache the previous prompt shares with this one is kept, as llama.cpp's own call does."""
        llm = self._llm
        if len(tokens) >= llm.n_ctx():
            return  # create_completion refuses it with the sizes
        end = len(tokens) - 1
        cached = 0
        for held, wanted in zip(llm.input_ids[: llm.n_tokens], tokens[:end], strict=False):
            if held != wanted:
                break
            cached += 1
        # a recurrent model (Mamba, RWKV) cannot drop the end of its state: start over, as llama.cpp's own call does
        if cached < llm.n_tokens and not llm._ctx.kv_cache_seq_rm(-1, cached, -1):
            llm.reset()
            cached = 0
        llm.n_tokens = cached
        step = llm.n_batch if self._config.n_gpu_layers else min(llm.n_batch, CPU_PREFILL_STEP)
        for start in range(cached, end, step):
            self._check_open()  # aclose() waits for this thread: it ends within a step, not after the answer
            llm.eval(tokens[start : min(start + step, end)])
            yield ""

    async def stream(self, prompt: str, user_id: str, stop: Sequence[str] = ()) -> AsyncGenerator[str, None]:
        """Tokens as llama.cpp produces them, ended where the answer starts repeating itself (the repeats cut), then
        the closing fence of a code block the answer left open (cut or at max_tokens); stop strings are honoured by
        llama.cpp itself."""
        self._check_open()
        async with self._queue:
            self._check_open()  # closed while this request waited in line
            try:
                async for piece in iterate_in_thread(
                    lambda: close_fences(stop_repeating(self._pieces(prompt, stop), self.name, prompt)),
                    self._model_lock,
                ):
                    yield piece
            except ValueError as exc:
                raise LlmError(f"llm: llama rejected the prompt: {exc}") from exc

    async def generate(self, prompt: str, user_id: str, stop: Sequence[str] = ()) -> str:
        parts = [piece async for piece in self.stream(prompt, user_id, stop)]
        return cut_at_stop("".join(parts), stop).strip()

    def _check_open(self) -> None:
        if self._closed:
            raise LlmClosedError("the llama backend was used after close(); create a new one")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._queue:
            # off the event loop: a cancelled request's thread may still hold the model for the rest of its step
            await asyncio.to_thread(self._close_model)

    def _close_model(self) -> None:
        with self._model_lock, self._tokenizer_lock:
            self._llm.close()


def _control_token_texts(llm: Any) -> list[str]:
    """The texts llama.cpp reads as tokens only when it tokenises with special=True (control and unknown tokens)."""
    import llama_cpp

    model = llm._model
    special = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN
    return [
        llama_cpp.llama_vocab_get_text(model.vocab, token).decode("utf-8", "replace")
        for token in range(model.n_vocab())
        if model.token_get_attr(token) & special
    ]
