"""Embeddings with llama.cpp (llama-cpp-python) from a GGUF model, mean-pooled and L2-normalised."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from appliance.cpu_limit import runtime_threads
from quart_app.embedder.errors import EmbeddingFailedError, ModelFileUnreadableError, RuntimeUnavailableError
from quart_app.embedder.runtime import InputType, LoadedModelIdentity, Vectors, l2_normalise

log = logging.getLogger(__name__)


class LlamaEmbeddingRuntime(LoadedModelIdentity):
    """A GGUF model loaded with embedding=True and mean pooling; llama_cpp is imported only when one is built.

    Texts are embedded as given; model prefixes are added by PrefixedRuntime.
    """

    def __init__(
        self,
        *,
        model_id: str,
        model_path: Path,
        max_tokens: int,
        n_ctx: int = 512,
        n_batch: int = 512,
        n_gpu_layers: int = 0,
        threads: int = 0,
    ) -> None:
        llama_cpp = _import_llama_cpp()
        self._model_id = model_id
        # llama.cpp pools per decoded sequence, so one input must fit in one batch; embed() truncates there
        self._max_tokens = max(1, min(max_tokens, n_ctx, n_batch))
        n_threads = runtime_threads(threads) or os.cpu_count() or 1
        try:
            self._llm: Any = llama_cpp.Llama(
                model_path=str(model_path),
                embedding=True,
                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                n_ctx=n_ctx,
                n_batch=self._max_tokens,
                n_ubatch=self._max_tokens,
                n_gpu_layers=n_gpu_layers,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelFileUnreadableError(
                model_path, f"llama.cpp cannot load the GGUF model {model_path} for {model_id!r}: {exc}"
            ) from exc
        self._dimension = int(self._llm.n_embd())
        log.info(
            "GGUF embedding model %s loaded from %s (%d-d, n_ctx %d, n_batch %d, n_gpu_layers %d, threads %d)",
            model_id,
            model_path,
            self._dimension,
            n_ctx,
            self._max_tokens,
            n_gpu_layers,
            n_threads,
        )

    def count_tokens(self, texts: list[str], input_type: InputType = "passage") -> list[int]:
        return [len(self._llm.tokenize(text.encode("utf-8"), add_bos=True)) for text in texts]

    def embed(self, texts: list[str], input_type: InputType) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        try:
            rows = self._llm.embed(texts, normalize=False, truncate=True)
        except (ValueError, RuntimeError) as exc:
            raise EmbeddingFailedError(f"llama.cpp failed to embed with model {self._model_id!r}: {exc}") from exc
        return l2_normalise(np.asarray(rows, dtype=np.float32))


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp  # optional dependency, imported only for this runtime
    except ImportError as exc:
        raise RuntimeUnavailableError(
            "the llama runtime needs llama-cpp-python, which is not installed; install the 'llama' extra "
            "(pip install 'llama-cpp-python==0.3.36') or use --runtime onnx"
        ) from exc
    return llama_cpp
