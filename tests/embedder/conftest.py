"""Embedder fixtures: the offline MiniLM runtime in-process, and the real embedder program on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from embedder_testkit import MINILM, SERVER_MAX_INPUTS, SERVER_MAX_REQUEST_TOKENS, EmbedderProcess

from appliance.model_catalogue import get_model, resolve_model_files
from quart_app.embedder.onnx_runtime import OnnxEmbeddingRuntime


@pytest.fixture(scope="session")
def minilm_runtime() -> OnnxEmbeddingRuntime:
    entry = get_model(MINILM)
    files = resolve_model_files(entry, Path("/nonexistent"))
    assert files.tokenizer is not None and entry.dimension is not None
    return OnnxEmbeddingRuntime(
        model_id=entry.id,
        model_path=files.model,
        tokenizer_path=files.tokenizer,
        dimension=entry.dimension,
        max_tokens=entry.max_tokens,
        threads=1,
    )


@pytest.fixture(scope="session")
def embedder_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbedderProcess]:
    """The real embedder program serving MiniLM over a TCP socket."""
    log_path = tmp_path_factory.mktemp("embedder") / "embedder.log"
    limits = ["--max-inputs", str(SERVER_MAX_INPUTS), "--max-request-tokens", str(SERVER_MAX_REQUEST_TOKENS)]
    server = EmbedderProcess(["--model", MINILM, "--threads", "1", *limits], log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
