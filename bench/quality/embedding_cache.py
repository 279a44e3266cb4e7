"""Vectors kept between benchmark runs: the same model, input type and text are embedded once on this machine."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

SAVE_EVERY = 64  # new vectors between saves, so an interrupted run keeps most of its work


class TextEmbedder(Protocol):
    """The embedding client, or the cross-lingual model."""

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]: ...


class CachedEmbedder:
    """An embedder stand-in for the worker and retrieval: cache hits skip the embedder, misses go to it."""

    def __init__(self, client: TextEmbedder, path: Path, model: str) -> None:
        self._client = client
        self._path = path
        self._model = model
        self._vectors: dict[bytes, list[float]] = {}
        if path.is_file():
            stored = np.load(path)
            # numpy's S32 drops a digest's trailing NUL bytes: pad them back, or 1 key in 256 never hits again
            keys = (key.ljust(32, b"\0") for key in stored["keys"].tolist())
            self._vectors = dict(zip(keys, stored["vectors"].tolist(), strict=True))
        self.hits = 0
        self.misses = 0
        self._unsaved = 0

    @property
    def model_id(self) -> str:
        return self._model

    def _key(self, text: str, input_type: str) -> bytes:
        return hashlib.sha256(f"{self._model}\0{input_type}\0{text}".encode()).digest()

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        keys = [self._key(text, input_type) for text in texts]
        missing = [n for n, key in enumerate(keys) if key not in self._vectors]
        if missing:
            vectors = await self._client.embed([texts[n] for n in missing], input_type)
            for n, vector in zip(missing, vectors, strict=True):
                self._vectors[keys[n]] = vector
            self._unsaved += len(missing)
            if self._unsaved >= SAVE_EVERY:
                self.save()
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        return [self._vectors[key] for key in keys]

    def save(self) -> None:
        if not self._unsaved:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._vectors), dtype="S32")
        vectors = np.array(list(self._vectors.values()), dtype=np.float32)
        partial = self._path.with_suffix(".partial.npz")
        np.savez(partial, keys=keys, vectors=vectors)
        partial.replace(self._path)
        self._unsaved = 0
