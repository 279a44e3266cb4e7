"""The interface every embedding runtime implements, and helpers they share."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from appliance.model_catalogue import ModelPrefixes

InputType = Literal["query", "passage"]
INPUT_TYPES: tuple[InputType, ...] = ("query", "passage")

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class EmbeddingRuntime(Protocol):
    """A loaded embedding model; calls are not thread-safe, so one thread owns it."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def embed(self, texts: list[str], input_type: InputType) -> Vectors:
        """(len(texts), dimension) float32 rows, L2-normalised; inputs longer than max_tokens are truncated."""
        ...

    def count_tokens(self, texts: list[str], input_type: InputType = "passage") -> list[int]:
        """Tokens per text as the model sees it (prefix and special tokens included), before truncation."""
        ...


class LoadedModelIdentity:
    """model_id, dimension and max_tokens of a runtime, fixed when it loads its model (set in its __init__)."""

    _model_id: str
    _dimension: int
    _max_tokens: int

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens


class PrefixedRuntime:
    """A runtime that embeds text exactly as given, behind the model's query/passage prefixes.

    The one place the embedder program adds catalogue prefixes, so every runtime gets them once.
    """

    def __init__(self, inner: EmbeddingRuntime, prefixes: ModelPrefixes) -> None:
        self._inner = inner
        self._prefixes = prefixes

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    @property
    def max_tokens(self) -> int:
        return self._inner.max_tokens

    def embed(self, texts: list[str], input_type: InputType) -> Vectors:
        return self._inner.embed(self._prefixes.apply(texts, input_type), input_type)

    def count_tokens(self, texts: list[str], input_type: InputType = "passage") -> list[int]:
        return self._inner.count_tokens(self._prefixes.apply(texts, input_type), input_type)


def l2_normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length; an all-zero row stays zero instead of becoming NaN."""
    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    scaled: Vectors = (rows / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)
    return scaled
