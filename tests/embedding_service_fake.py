"""An OpenAI-compatible embedding service for scaling benchmarks and tests (POST /v1/embeddings, GET /v1/models).

Each request takes `latency_s` whatever its size, and at most `capacity` requests are served at once; the others wait
in line (as text-embeddings-inference queues them) instead of being refused, so past its capacity the service's
throughput flattens and no request fails. A text's vector is one of `VECTOR_POOL` fixed unit vectors, picked by the
text's SHA-256 (the same text always gets the same vector) and JSON-encoded once, so answering costs the CPU almost
nothing. Every text embedded is counted, so a test can see texts embedded twice.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
from local_http_server import LocalHttpServer

VECTOR_POOL = 1024


def vector_pool(dimension: int) -> npt.NDArray[np.float32]:
    """The fake's unit vectors, the same in every process."""
    vectors = np.random.default_rng(dimension).standard_normal((VECTOR_POOL, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def pool_index(text: str) -> int:
    """Which pool vector the fake answers for `text`."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % VECTOR_POOL


@dataclass
class EmbeddingServiceFake:
    """Serves on 127.0.0.1 from a thread while entered; `url` is the /v1 base URL the embedding client takes."""

    dimension: int = 384
    latency_s: float = 0.2
    capacity: int = 8
    model: str = "fake-embedder"
    # every text embedded, with how often
    texts: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    # most requests in the service at one time, served or waiting in line for a slot
    peak_in_flight: int = 0

    def __post_init__(self) -> None:
        self._encoded = [json.dumps(vector.tolist()) for vector in vector_pool(self.dimension)]
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._http = LocalHttpServer(self._handler())

    @property
    def url(self) -> str:
        return f"{self._http.base_url}/v1"

    @property
    def duplicate_texts(self) -> int:
        """Embeddings beyond the first of each text."""
        return sum(count - 1 for count in self.texts.values())

    def __enter__(self) -> EmbeddingServiceFake:
        self._http.__enter__()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._http.__exit__(t, e, tb)

    def _embed(self, texts: list[str]) -> list[str]:
        """The JSON-encoded vectors of `texts`, after waiting for a slot and `latency_s` in it."""
        with self._lock:
            self.requests += 1
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        with self._slots:
            time.sleep(self.latency_s)
        with self._lock:
            self._in_flight -= 1
            self.texts.update(texts)
        return [self._encoded[pool_index(text)] for text in texts]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path != "/v1/models":
                    self._reply(404, {"error": {"message": f"no route {self.path}; try /v1/models"}})
                    return
                card = {"id": service.model, "object": "model", "dimension": service.dimension, "max_tokens": 256}
                self._reply(200, {"object": "list", "data": [card]})

            def do_POST(self) -> None:
                if self.path != "/v1/embeddings":
                    self._reply(404, {"error": {"message": f"no route {self.path}; try /v1/embeddings"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                texts = body.get("input") if isinstance(body, dict) else None
                texts = [texts] if isinstance(texts, str) else texts
                if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
                    self._reply(400, {"error": {"message": "'input' must be a string or a non-empty list of strings"}})
                    return
                data = ",".join(
                    f'{{"object":"embedding","index":{i},"embedding":{vector}}}'
                    for i, vector in enumerate(service._embed(texts))
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
