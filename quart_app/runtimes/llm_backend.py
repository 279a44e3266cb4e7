"""The LLM backend interface, the approximate token counter, and the factory that picks a backend from config."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from quart_app.runtimes.errors import LlmUnavailableError

if TYPE_CHECKING:
    from appliance.config import AppConfig
    from quart_app.nextcloud import NextcloudClient
    from quart_app.runtimes.chat_template import ModelChatTemplate

log = logging.getLogger(__name__)

_PIECES = re.compile(r"[^\W\d_]+|\d+|[^\w\s]+|_+")
# safety margin over the measured worst case (dense German compounds), see approximate_token_count
_MARGIN = 1.1


def approximate_token_count(text: str) -> int:
    """Tokens of `text` for an unknown BPE tokenizer, deliberately on the high side.

    Used where the real tokenizer is not available (nc_texttotext: the model behind Nextcloud is unknown;
    extractive: nothing is generated). A regex word-piece count: each run of letters counts ceil(len/3) plus one per
    non-ASCII letter (BPE vocabularies split umlauts and accents into bytes), each run of digits ceil(len/2), each run
    of punctuation ceil(len/2); the sum gets a 10 % margin. Measured against SmolLM2's BPE tokenizer on English
    docstrings and German prose (tests/retrieval/test_prompt_packing.py) it gives 1.0-2.2x the real count: over-
    counting only wastes some context, under-counting would overflow the remote model's window.
    """
    count = 0
    for piece in _PIECES.findall(text):
        if piece[0].isdigit():
            count += math.ceil(len(piece) / 2)
        elif piece[0].isalpha():
            count += math.ceil(len(piece) / 3) + sum(1 for ch in piece if ord(ch) > 127)
        else:
            count += math.ceil(len(piece) / 2)
    return math.ceil(count * _MARGIN)


@runtime_checkable
class LlmBackend(Protocol):
    """One configured language model; generate/stream may be called concurrently (the backend serialises)."""

    @property
    def name(self) -> str: ...

    @property
    def n_ctx(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as this model's prompt (the real tokenizer, or the documented approximation)."""
        ...

    def plain_text(self, text: str) -> str:
        """Document or question text as it must go into a prompt: never read as this model's control tokens (only
        the template's own are)."""
        ...

    async def generate(self, prompt: str, user_id: str, stop: Sequence[str] = ()) -> str:
        """The full completion of `prompt`, cut at the first stop string."""
        ...

    async def aclose(self) -> None:
        """Free the model or client; idempotent."""
        ...


@runtime_checkable
class CarriesChatTemplate(Protocol):
    """A backend whose model file may carry its own chat template (a GGUF's tokenizer.chat_template)."""

    def chat_template(self) -> ModelChatTemplate | None: ...


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string."""
    end = len(text)
    for marker in stop:
        if marker:
            index = text.find(marker)
            if index != -1:
                end = min(end, index)
    return text[:end]


def resolve_model_path(model: str, model_dir: Path) -> Path:
    """A catalogue id, an absolute path, or a path relative to the model dir -> an existing file."""
    candidate = Path(model).expanduser()
    path = candidate if candidate.is_absolute() else model_dir / candidate
    if path.is_file():
        return path
    from appliance.model_catalogue import load_catalogue, resolve_model_files

    catalogue = load_catalogue()
    if model in catalogue:
        return resolve_model_files(catalogue[model], model_dir).model
    raise LlmUnavailableError(
        f"the LLM model {model!r} is neither a file (looked in {model_dir}) nor a catalogue id"
        f" ({', '.join(sorted(catalogue))}); set llm.<backend>.model to one of them"
    )


def _nc_texttotext(config: AppConfig, model_dir: Path, nextcloud: NextcloudClient | None) -> LlmBackend:
    from appliance.llm_config import NcTextToTextConfig
    from quart_app.runtimes.llm_nc_texttotext import NcTextToTextBackend

    assert isinstance(config.llm, NcTextToTextConfig)
    return NcTextToTextBackend(config.llm, nextcloud)


def _llama(config: AppConfig, model_dir: Path, nextcloud: NextcloudClient | None) -> LlmBackend:
    from appliance.llm_config import LlamaConfig
    from quart_app.runtimes.llm_llama import LlamaBackend

    assert isinstance(config.llm, LlamaConfig)
    return LlamaBackend(resolve_model_path(config.llm.model, model_dir), config.llm)


def _ctransformer(config: AppConfig, model_dir: Path, nextcloud: NextcloudClient | None) -> LlmBackend:
    from appliance.llm_config import CTransformerConfig
    from quart_app.runtimes.llm_ctransformer import CTransformerBackend

    assert isinstance(config.llm, CTransformerConfig)
    return CTransformerBackend(resolve_model_path(config.llm.model, model_dir), config.llm)


def _extractive(config: AppConfig, model_dir: Path, nextcloud: NextcloudClient | None) -> LlmBackend:
    from appliance.llm_config import ExtractiveConfig
    from quart_app.runtimes.llm_extractive import ExtractiveBackend

    assert isinstance(config.llm, ExtractiveConfig)
    return ExtractiveBackend(config.llm)


def _standalone_extractive() -> LlmBackend:
    """nc_texttotext with no Nextcloud to ask (a start without AppAPI): quote passages, saying why, from the start."""
    from appliance.llm_config import ExtractiveConfig
    from quart_app.runtimes.llm_extractive import STANDALONE_HEADER, ExtractiveBackend

    log.warning(
        "llm: nc_texttotext needs Nextcloud and NEXTCLOUD_URL is not set: answers quote the best passages"
        " (extractive) until NEXTCLOUD_URL is set; set `llm: llama` in config.yaml for generated answers without it"
    )
    return ExtractiveBackend(ExtractiveConfig(), header=STANDALONE_HEADER)


LlmFactory = Callable[["AppConfig", Path, "NextcloudClient | None"], LlmBackend]
# one entry per config.llm section name (appliance.llm_config.LLM_BACKENDS); imports stay lazy (llama.cpp is heavy)
LLM_FACTORIES: dict[str, LlmFactory] = {
    "nc_texttotext": _nc_texttotext,
    "llama": _llama,
    "ctransformer": _ctransformer,
    "extractive": _extractive,
}


def create_llm_backend(config: AppConfig, model_dir: Path, nextcloud: NextcloudClient | None = None) -> LlmBackend:
    """The backend named by config.llm_backend; loads the model now, so call it once per process at start-up."""
    if config.llm_backend == "nc_texttotext" and nextcloud is None:
        return _standalone_extractive()
    factory = LLM_FACTORIES.get(config.llm_backend)
    if factory is None:
        raise LlmUnavailableError(f"unknown LLM backend {config.llm_backend!r}; use {', '.join(LLM_FACTORIES)}")
    return factory(config, model_dir, nextcloud)
