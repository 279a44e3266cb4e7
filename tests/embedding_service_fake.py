"""An OpenAI-compatible embedding service over real HTTP (POST /v1/embeddings, GET /v1/models), standing in for an
external one (text-embeddings-inference, vLLM, a cloud API) in tests and benchmarks.

Each request takes `latency_s` whatever its size, and at most `capacity` requests are served at once; the others wait
in line (as text-embeddings-inference queues them) instead of being refused, so past its capacity the service's
throughput flattens and no request fails. A text's vector is one of `VECTOR_POOL` fixed unit vectors, picked by the
text's SHA-256 (the same text always gets the same vector) and JSON-encoded once, so answering costs the CPU almost
nothing. The model id and dimension may change while it runs (a model swapped behind the URL), and GET /v1/models may be
missing (`models_list`); the next
`fail_next` requests answer 500 (a server error, not an outage); with `refusal` set every request answers 400 with it
(an error about the texts; "{input}" in it becomes the request's first text, as some servers repeat it); `nan_texts`
get a vector with NaN in it. Every text embedded and every request's size is recorded, so a test can see texts
embedded twice, how requests were split and how many ran at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import numpy.typing as npt
from local_http_server import LocalHttpFake, LocalHttpServer

VECTOR_POOL = 1024


def vector_pool(dimension: int) -> npt.NDArray[np.float32]:
    """The fake's unit vectors, the same in every process."""
    vectors = np.random.default_rng(dimension).standard_normal((VECTOR_POOL, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def pool_index(text: str) -> int:
    """Which pool vector the fake answers for `text`."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % VECTOR_POOL


def fake_vector(text: str, dimension: int) -> list[float]:
    """The vector the fake returns for `text` at `dimension`."""
    return [float(x) for x in vector_pool(dimension)[pool_index(text)]]


@cache
def _encoded_pool(dimension: int) -> list[str]:
    return [json.dumps(vector.tolist()) for vector in vector_pool(dimension)]


@dataclass
class EmbeddingServiceFake(LocalHttpFake):
    """Serves on 127.0.0.1 from a thread while entered; `url` is the /v1 base URL the embedding client takes."""

    dimension: int = 384
    latency_s: float = 0.0
    capacity: int = 64
    model: str = "fake-embedder"
    fail_next: int = 0
    # every request answers 400 with this message: the service refuses the texts ("{input}": the first text)
    refusal: str | None = None
    # False: GET /v1/models answers 404, as text-embeddings-inference (the model shows only in embedding responses)
    models_list: bool = True
    # texts whose vector starts with NaN (as a Python server's json.dumps writes it)
    nan_texts: frozenset[str] = frozenset()
    # every text embedded, with how often
    texts: Counter[str] = field(default_factory=Counter)
    # how many inputs each embedding request carried (a failed one too)
    inputs_per_request: list[int] = field(default_factory=list)
    failed_requests: int = 0
    # most requests in the service at one time, served or waiting in line for a slot
    peak_in_flight: int = 0
    # (user, password) every request must carry as HTTP Basic auth, else 401
    basic_auth: tuple[str, str] | None = None
    # requests refused with 401
    unauthorized: int = 0

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._http = LocalHttpServer(self._handler())

    @property
    def url(self) -> str:
        return f"{self._http.base_url}/v1"

    @property
    def requests(self) -> int:
        return len(self.inputs_per_request)

    @property
    def duplicate_texts(self) -> int:
        """Embeddings beyond the first of each text."""
        return sum(count - 1 for count in self.texts.values())

    def _embed(self, texts: list[str]) -> list[str] | None:
        """The JSON-encoded vectors of `texts` after a slot and `latency_s` in it; None = a scripted failure."""
        with self._lock:
            self.inputs_per_request.append(len(texts))
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            fail = self.fail_next > 0
            if fail:
                self.fail_next -= 1
                self.failed_requests += 1
        try:
            with self._slots:
                time.sleep(self.latency_s)
        finally:
            with self._lock:
                self._in_flight -= 1
        if fail:
            return None
        with self._lock:
            self.texts.update(texts)
        encoded = _encoded_pool(self.dimension)
        vectors = [encoded[pool_index(text)] for text in texts]
        return ["[NaN," + v.split(",", 1)[1] if t in self.nan_texts else v for t, v in zip(texts, vectors, strict=True)]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _authorized(self) -> bool:
                if service.basic_auth is None:
                    return True
                token = base64.b64encode(":".join(service.basic_auth).encode()).decode()
                if self.headers.get("Authorization") == f"Basic {token}":
                    return True
                with service._lock:
                    service.unauthorized += 1
                self._reply(401, {"error": {"message": "Incorrect username or password"}})
                return False

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                if self.path != "/v1/models" or not service.models_list:
                    self._reply(404, {"error": {"message": f"no route {self.path}; try /v1/models"}})
                    return
                card = {"id": service.model, "object": "model", "dimension": service.dimension, "max_tokens": 256}
                self._reply(200, {"object": "list", "data": [card]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                if not self._authorized():
                    return
                if self.path != "/v1/embeddings":
                    self._reply(404, {"error": {"message": f"no route {self.path}; try /v1/embeddings"}})
                    return
                texts = body.get("input") if isinstance(body, dict) else None
                texts = [texts] if isinstance(texts, str) else texts
                if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
                    self._reply(400, {"error": {"message": "'input' must be a string or a non-empty list of strings"}})
                    return
                if service.refusal is not None:
                    self._reply(400, {"error": {"message": service.refusal.replace("{input}", texts[0])}})
                    return
                vectors = service._embed(texts)
                if vectors is None:
                    self._reply(500, {"error": {"message": "CUDA out of memory (scripted)", "type": "server_error"}})
                    return
                data = ",".join(
                    f'{{"object":"embedding","index":{i},"embedding":{vector}}}' for i, vector in enumerate(vectors)
                )
                usage = json.dumps({"prompt_tokens": len(texts), "total_tokens": len(texts)})
                model = json.dumps(service.model)
                self._send(200, f'{{"object":"list","data":[{data}],"model":{model},"usage":{usage}}}')

            def _reply(self, code: int, body: dict[str, Any]) -> None:
                self._send(code, json.dumps(body))

            def _send(self, code: int, body: str) -> None:
                payload = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
