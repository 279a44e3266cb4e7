"""Second-stage scorers on onnxruntime + tokenizers: a cross-encoder, and late interaction over an encoder's tokens."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

from appliance.model_catalogue import NO_PREFIXES, ModelPrefixes
from quart_app.embedder.errors import RuntimeLoadError
from quart_app.embedder.onnx_runtime import CPU_PROVIDER, create_session, pad_id_of
from quart_app.runtimes.errors import RerankerLoadError, RerankFailedError

log = logging.getLogger(__name__)

Floats = npt.NDArray[np.float32]


class _OnnxTokenModel:
    """An ONNX transformer fed with per-batch padded encodings (input_ids, attention_mask[, token_type_ids])."""

    def __init__(
        self, model_id: str, model_path: Path, tokenizer_path: Path, max_tokens: int, batch_size: int, threads: int
    ) -> None:
        self.model_id = model_id
        self._batch_size = max(1, batch_size)
        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception for unreadable files
            message = f"reranker {model_id!r}: cannot load the tokenizer {tokenizer_path}: {exc}"
            raise RerankerLoadError(message) from exc
        try:
            self._session = create_session(model_id, model_path, (CPU_PROVIDER,), threads)
        except RuntimeLoadError as exc:
            raise RerankerLoadError(f"reranker {model_id!r}: {exc}") from exc
        self._pad_id = pad_id_of(self._tokenizer)
        self._tokenizer.no_padding()  # padded per batch below; tokenizer.json files often pin a fixed length
        self._tokenizer.enable_truncation(max_length=max_tokens)
        # a passage's "[SEP]" is text, not the pair template's separator
        self._tokenizer.encode_special_tokens = True
        inputs = {i.name: i.type for i in self._session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= set(inputs):
            raise RerankerLoadError(
                f"reranker {model_id!r}: the ONNX model {model_path} has inputs {sorted(inputs)}, not input_ids and"
                " attention_mask; it is not a transformer export this reranker can feed"
            )
        self._input_names = tuple(inputs)
        self._id_dtype = np.int32 if inputs["input_ids"] == "tensor(int32)" else np.int64

    def _run(self, encodings: Sequence[Encoding]) -> tuple[Floats, npt.NDArray[np.bool_]]:
        """The model's first output for a padded batch, and which positions were real tokens."""
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=self._id_dtype)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
            types[row, : len(encoding.ids)] = encoding.type_ids
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = types
        try:
            output = np.asarray(self._session.run(None, feed)[0], dtype=np.float32)
        except Exception as exc:  # onnxruntime raises its own untyped errors (Fail, InvalidArgument, ...)
            raise RerankFailedError(
                f"onnxruntime failed on {len(encodings)} x {width} tokens for reranker {self.model_id!r}: {exc}"
            ) from exc
        return output, mask.astype(bool)

    def _batches(self, encodings: Sequence[Encoding]) -> list[list[int]]:
        """Row indexes in batches of similar length, so little padding is computed."""
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        return [order[start : start + self._batch_size] for start in range(0, len(order), self._batch_size)]


class CrossEncoderScorer(_OnnxTokenModel):
    """A cross-encoder (e.g. ms-marco MiniLM/TinyBERT): [CLS] question [SEP] passage [SEP] -> one relevance logit."""

    def score(self, question: str, passages: list[str]) -> list[float]:
        encodings = self._tokenizer.encode_batch([(question, passage) for passage in passages])
        scores = np.empty(len(passages), dtype=np.float32)
        for rows in self._batches(encodings):
            logits, _ = self._run([encodings[i] for i in rows])
            # one logit per pair (ms-marco); a two-class head scores with its "relevant" column
            scores[rows] = logits.reshape(len(rows), -1)[:, -1]
        return [float(s) for s in scores]


class LateInteractionScorer(_OnnxTokenModel):
    """Late interaction (MaxSim) over an encoder's token vectors: each question token's best match in the passage,
    averaged over the question's tokens. Works with any encoder export that yields token vectors (MiniLM, e5)."""

    def __init__(
        self,
        model_id: str,
        model_path: Path,
        tokenizer_path: Path,
        max_tokens: int,
        batch_size: int,
        threads: int,
        prefixes: ModelPrefixes = NO_PREFIXES,
    ) -> None:
        super().__init__(model_id, model_path, tokenizer_path, max_tokens, batch_size, threads)
        self._prefixes = prefixes

    def score(self, question: str, passages: list[str]) -> list[float]:
        query = self._vectors_of(self._tokenizer.encode_batch(self._prefixes.apply([question], "query")))[0]
        encodings = self._tokenizer.encode_batch(self._prefixes.apply(passages, "passage"))
        scores = np.empty(len(passages), dtype=np.float32)
        for rows in self._batches(encodings):
            for row, tokens in zip(rows, self._vectors_of([encodings[i] for i in rows]), strict=True):
                scores[row] = (query @ tokens.T).max(axis=1).mean() if len(tokens) and len(query) else 0.0
        return [float(s) for s in scores]

    def _vectors_of(self, encodings: Sequence[Encoding]) -> list[Floats]:
        """Unit-length vectors of each encoding's real tokens ([CLS]/[SEP] and padding left out)."""
        hidden, real = self._run(encodings)
        if hidden.ndim != 3:
            raise RerankFailedError(
                f"reranker {self.model_id!r}: late interaction needs token vectors, but the model's first output has"
                f" shape {hidden.shape}; use an encoder export with last_hidden_state"
            )
        vectors = []
        for row, encoding in enumerate(encodings):
            keep = real[row].copy()
            keep[: len(encoding.ids)] &= np.asarray(encoding.special_tokens_mask, dtype=bool) == 0
            tokens = hidden[row][keep]
            vectors.append(tokens / np.maximum(np.linalg.norm(tokens, axis=1, keepdims=True), np.float32(1e-12)))
        return vectors
