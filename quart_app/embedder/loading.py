"""Builds an embedding runtime from a model catalogue id (or a GGUF path for the llama runtime)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.model_catalogue import ModelEntry, get_model, load_catalogue, resolve_model_files
from quart_app.embedder.errors import RuntimeLoadError
from quart_app.embedder.runtime import EmbeddingRuntime

log = logging.getLogger(__name__)

RuntimeKind = Literal["onnx", "llama"]


@dataclass(frozen=True)
class RuntimeOptions:
    """Knobs shared by the runtimes; each runtime reads the ones it knows."""

    threads: int = 0
    providers: Sequence[str] = ("CPUExecutionProvider",)
    batch_size: int = 8
    n_ctx: int = 512
    n_batch: int = 512
    n_gpu_layers: int = 0


def load_runtime(
    model: str,
    *,
    runtime: RuntimeKind,
    model_dir: Path,
    options: RuntimeOptions | None = None,
    catalogue_path: Path | None = None,
) -> EmbeddingRuntime:
    """Load `model` (a catalogue id; for llama also a .gguf path) into the chosen runtime."""
    opts = options or RuntimeOptions()
    if runtime == "llama" and model.endswith(".gguf"):
        return _load_gguf_path(model, model_dir, opts)
    entry = get_model(model, load_catalogue(catalogue_path))
    files = resolve_model_files(entry, model_dir)
    if runtime == "onnx":
        _check_format(entry, "onnx", runtime)
        if files.tokenizer is None:
            raise RuntimeLoadError(
                f"model {entry.id!r} has no 'tokenizer' in the catalogue; the onnx runtime needs a tokenizer.json"
            )
        from quart_app.embedder.onnx_runtime import OnnxEmbeddingRuntime  # keep llama-only starts light

        return OnnxEmbeddingRuntime(
            model_id=entry.id,
            model_path=files.model,
            tokenizer_path=files.tokenizer,
            dimension=_dimension(entry),
            max_tokens=entry.max_tokens,
            query_prefix=entry.query_prefix,
            passage_prefix=entry.passage_prefix,
            providers=opts.providers,
            threads=opts.threads,
            batch_size=opts.batch_size,
        )
    _check_format(entry, "gguf", runtime)
    from quart_app.embedder.llama_runtime import LlamaEmbeddingRuntime  # llama_cpp is optional

    return LlamaEmbeddingRuntime(
        model_id=entry.id,
        model_path=files.model,
        max_tokens=entry.max_tokens,
        query_prefix=entry.query_prefix,
        passage_prefix=entry.passage_prefix,
        n_ctx=opts.n_ctx,
        n_batch=opts.n_batch,
        n_gpu_layers=opts.n_gpu_layers,
        threads=opts.threads,
    )


def _load_gguf_path(model: str, model_dir: Path, opts: RuntimeOptions) -> EmbeddingRuntime:
    path = Path(model) if Path(model).is_absolute() else model_dir / model
    if not path.is_file():
        raise RuntimeLoadError(
            f"the GGUF model file {path} does not exist; put it in {model_dir} or give a catalogue id"
        )
    from quart_app.embedder.llama_runtime import LlamaEmbeddingRuntime  # llama_cpp is optional

    return LlamaEmbeddingRuntime(
        model_id=path.stem,
        model_path=path,
        max_tokens=opts.n_ctx,
        n_ctx=opts.n_ctx,
        n_batch=opts.n_batch,
        n_gpu_layers=opts.n_gpu_layers,
        threads=opts.threads,
    )


def _check_format(entry: ModelEntry, expected: str, runtime: str) -> None:
    if entry.format != expected:
        other = "llama" if entry.format == "gguf" else "onnx"
        raise RuntimeLoadError(
            f"model {entry.id!r} is a {entry.format} model; the {runtime} runtime needs {expected}"
            f" (use --runtime {other})"
        )


def _dimension(entry: ModelEntry) -> int:
    if entry.dimension is None:
        raise RuntimeLoadError(f"model {entry.id!r} has no 'dimension' in the catalogue; the onnx runtime needs it")
    return entry.dimension
