"""The llama.cpp runtime, with the SmolLM2 GGUF standing in as embedding model (no GGUF embedder ships on PyPI)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from quart_app.embedder.errors import RuntimeLoadError, RuntimeUnavailableError
from quart_app.embedder.loading import RuntimeOptions, load_runtime

SMOLLM = "smollm2-135m-instruct-q4_1"


def test_onnx_runtime_refuses_a_gguf_model(tmp_path: Path) -> None:
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(SMOLLM, runtime="onnx", model_dir=tmp_path)
    assert str(info.value) == (
        "model 'smollm2-135m-instruct-q4_1' is a gguf model; the onnx runtime needs onnx (use --runtime llama)"
    )


def test_missing_gguf_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(RuntimeLoadError, match=r"the GGUF model file .*nope\.gguf does not exist; put it in"):
        load_runtime("nope.gguf", runtime="llama", model_dir=tmp_path)


def test_gguf_embeddings_are_normalised_and_batch_invariant(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install the 'llama' extra)")
    runtime = load_runtime(
        SMOLLM, runtime="llama", model_dir=tmp_path, options=RuntimeOptions(threads=1, n_ctx=128, n_batch=128)
    )
    assert (runtime.model_id, runtime.dimension, runtime.max_tokens) == (SMOLLM, 576, 128)
    texts = ["The quick brown fox jumps over the lazy dog.", "hi", "word " * 300]
    vectors = runtime.embed(texts, "passage")
    assert vectors.dtype == np.float32 and vectors.shape == (3, 576)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    single = np.stack([runtime.embed([text], "passage")[0] for text in texts])
    np.testing.assert_allclose(vectors, single, atol=2e-3)
    counts = runtime.count_tokens(texts)
    assert counts[2] > 128 and counts[1] < 5
    # truncation at max_tokens: the tail beyond token 128 is not seen
    a, b = runtime.embed([texts[2], texts[2] + " a different ending"], "passage")
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_missing_llama_cpp_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` raise ImportError
    with pytest.raises(RuntimeUnavailableError) as info:
        load_runtime(SMOLLM, runtime="llama", model_dir=tmp_path)
    assert str(info.value) == (
        "the llama runtime needs llama-cpp-python, which is not installed; install the 'llama' extra "
        "(pip install 'llama-cpp-python==0.3.36') or use --runtime onnx"
    )
