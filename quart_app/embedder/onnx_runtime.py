"""Embeddings with onnxruntime + tokenizers: mean pooling over the attention mask, then L2 normalisation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from appliance.cpu_limit import runtime_threads
from quart_app.embedder.errors import EmbeddingFailedError, ModelFileUnreadableError, RuntimeLoadError
from quart_app.embedder.runtime import InputType, LoadedModelIdentity, Vectors, l2_normalise

log = logging.getLogger(__name__)

CPU_PROVIDER = "CPUExecutionProvider"
# output names of transformer exports, most useful first; a 2-D output is taken as already pooled
_OUTPUT_NAMES = ("last_hidden_state", "token_embeddings", "sentence_embedding")


class OnnxEmbeddingRuntime(LoadedModelIdentity):
    """A transformer encoder exported to ONNX (e.g. MiniLM, e5), run on the requested execution providers.

    Texts are embedded as given; model prefixes are added by PrefixedRuntime.
    """

    def __init__(
        self,
        *,
        model_id: str,
        model_path: Path,
        tokenizer_path: Path,
        dimension: int,
        max_tokens: int,
        providers: Sequence[str] = (CPU_PROVIDER,),
        threads: int = 0,
        batch_size: int = 8,
    ) -> None:
        self._model_id = model_id
        self._dimension = dimension
        self._max_tokens = max_tokens
        # rows per session.run: on CPU, 8 x 256 tokens beats 32 x 256 (~23 vs ~13 chunks/s for MiniLM int8)
        self._batch_size = max(1, batch_size)
        self._tokenizer, self._counter, self._pad_id = _load_tokenizers(tokenizer_path, max_tokens)
        self._session = create_session(model_id, model_path, providers, threads)
        inputs = {i.name: i.type for i in self._session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - set(inputs)
        if missing:
            raise RuntimeLoadError(
                f"the ONNX model {model_path} lacks the input(s) {sorted(missing)}; it is not a transformer encoder"
                " export this runtime can feed (expected input_ids, attention_mask[, token_type_ids])"
            )
        self._input_names = tuple(inputs)
        self._id_dtype = np.int32 if inputs["input_ids"] == "tensor(int32)" else np.int64
        outputs = [o.name for o in self._session.get_outputs()]
        self._output = next((name for name in _OUTPUT_NAMES if name in outputs), outputs[0])
        self._check_dimension(model_path)

    @property
    def providers(self) -> list[str]:
        """Execution providers the session actually runs on."""
        return list(self._session.get_providers())

    def count_tokens(self, texts: list[str], input_type: InputType = "passage") -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch(texts)]

    def embed(self, texts: list[str], input_type: InputType) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        # sorted by length so each batch pads to a similar size
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        result = np.empty((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            result[rows] = self._run_batch([encodings[i] for i in rows])
        return result

    def _run_batch(self, encodings: list[Encoding]) -> Vectors:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=self._id_dtype)
        mask = np.zeros((len(encodings), width), dtype=self._id_dtype)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feed: dict[str, npt.NDArray[np.int32] | npt.NDArray[np.int64]] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        try:
            hidden = np.asarray(self._session.run([self._output], feed)[0], dtype=np.float32)
        except Exception as exc:  # onnxruntime raises its own untyped errors (Fail, InvalidArgument, ...)
            raise EmbeddingFailedError(
                f"onnxruntime failed on a batch of {len(encodings)} x {width} tokens for model {self._model_id!r}: "
                f"{exc}"
            ) from exc
        if hidden.ndim == 3:
            weights = mask[..., None].astype(np.float32)
            hidden = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        return l2_normalise(hidden)

    def _check_dimension(self, model_path: Path) -> None:
        probe = self._run_batch(self._tokenizer.encode_batch(["dimension probe"]))
        if probe.shape[1] != self._dimension:
            raise RuntimeLoadError(
                f"the ONNX model {model_path} yields {probe.shape[1]}-d vectors but model {self._model_id!r} is "
                f"catalogued as {self._dimension}-d; fix 'dimension' in models/catalogue.yaml"
            )


def _load_tokenizers(path: Path, max_tokens: int) -> tuple[Tokenizer, Tokenizer, int]:
    try:
        tokenizer = Tokenizer.from_file(str(path))
        counter = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for unreadable files
        raise ModelFileUnreadableError(path, f"cannot load the tokenizer {path}: {exc}") from exc
    pad_id = pad_id_of(tokenizer)
    # padding is done per batch here; tokenizer.json files often pin a fixed pad/truncation length
    for tok in (tokenizer, counter):
        tok.no_padding()
        # a document's "[SEP]" or "</s>" is text: read as a special token it would end the passage inside the model
        tok.encode_special_tokens = True
    tokenizer.enable_truncation(max_length=max_tokens)
    counter.no_truncation()
    return tokenizer, counter, pad_id


def pad_id_of(tokenizer: Tokenizer) -> int:
    """The padding token id a tokenizer.json declares, else the id of [PAD] or <pad>, else 0."""
    padding = tokenizer.padding
    if padding:
        return int(padding["pad_id"])
    for token in ("[PAD]", "<pad>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return int(token_id)
    return 0


def create_session(model_id: str, path: Path, providers: Sequence[str], threads: int) -> ort.InferenceSession:
    """An onnxruntime session on the usable providers, with non-spinning threads; logs what it really runs on."""
    available = ort.get_available_providers()
    requested = list(providers) or [CPU_PROVIDER]
    usable = [p for p in requested if p in available]
    if len(usable) < len(requested):
        log.warning(
            "ONNX provider(s) %s requested for model %s are not in this onnxruntime build (available: %s)",
            [p for p in requested if p not in available],
            model_id,
            available,
        )
    options = ort.SessionOptions()
    intra_op_threads = runtime_threads(threads)
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle worker threads must not spin: the parser pool, PostgreSQL and the app share these cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=usable or [CPU_PROVIDER])
    except Exception as exc:  # onnxruntime raises untyped errors for unreadable or invalid models
        raise ModelFileUnreadableError(
            path, f"onnxruntime cannot load the model {path} for {model_id!r}: {exc}"
        ) from exc
    active = session.get_providers()
    # onnxruntime falls back to CPU silently when e.g. the CUDA libraries are missing
    lost = [p for p in requested if p != CPU_PROVIDER and p not in active]
    if lost:
        log.warning(
            "ONNX provider(s) %s did not load for model %s; fell back to CPU (running on %s)", lost, model_id, active
        )
    log.info(
        "ONNX model %s loaded from %s on %s, intra-op threads %s", model_id, path, active, intra_op_threads or "auto"
    )
    return session
