"""The real MiniLM int8 ONNX model run directly (onnxruntime + tokenizers), as the query embedder in tests."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer


class MiniLmEmbedder:
    """Mean-pooled, L2-normalised 384-d vectors; async embed() has EmbeddingClient's shape."""

    def __init__(self, model_path: Path, tokenizer_path: Path, max_tokens: int = 256) -> None:
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.calls = 0
        # the same test corpus is embedded for many tests; vectors are deterministic, so keep them
        self._cache: dict[str, npt.NDArray[np.float32]] = {}

    def embed_sync(self, texts: list[str]) -> npt.NDArray[np.float32]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, row in zip(missing, self._compute(missing), strict=True):
                self._cache[text] = row
        return np.stack([self._cache[t] for t in texts])

    def _compute(self, texts: list[str]) -> npt.NDArray[np.float32]:
        rows = []
        for start in range(0, len(texts), 32):
            encodings = self._tokenizer.encode_batch(texts[start : start + 32])
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(encodings), width), dtype=np.int64)
            mask = np.zeros((len(encodings), width), dtype=np.int64)
            for row, encoding in enumerate(encodings):
                ids[row, : len(encoding.ids)] = encoding.ids
                mask[row, : len(encoding.ids)] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = np.asarray(self._session.run(None, feed)[0], dtype=np.float32)
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
            rows.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        return np.concatenate(rows).astype(np.float32)

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        self.calls += 1
        return [list(map(float, row)) for row in self.embed_sync(texts)]
