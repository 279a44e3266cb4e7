"""An OpenAI-compatible embedding service over real HTTP, standing in for an external one (TEI, vLLM, a cloud API).

Deterministic vectors (from each text's SHA-256), a model id and a dimension that can change while it runs (a model
swapped behind the URL), a fixed latency per request (so the box's cores are not the limit), scripted 500s, and a
record of every request: inputs per request and the most requests it ever had in flight at once.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


def fake_vector(text: str, dimension: int) -> list[float]:
    """The vector the fake returns for `text`: repeatable, different per text."""
    digest = hashlib.sha256(text.encode()).digest()
    return [digest[i % len(digest)] / 255.0 - 0.5 for i in range(dimension)]


@dataclass
class OpenAIEmbedderFake:
    """Serves GET /v1/models and POST /v1/embeddings on 127.0.0.1 (a free port) until the `with` block ends."""

    model: str = "fake-embed-8"
    dimension: int = 8
    latency_s: float = 0.0
    # the next this-many embedding requests answer 500 (a server error, not an outage)
    fail_next: int = 0
    inputs_per_request: list[int] = field(default_factory=list)
    peak_in_flight: int = 0
    failed_requests: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> OpenAIEmbedderFake:
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _embeddings(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        with self._lock:
            self.inputs_per_request.append(len(texts))
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            fail = self.fail_next > 0
            self.fail_next -= 1 if fail else 0
            self.failed_requests += 1 if fail else 0
        try:
            time.sleep(self.latency_s)
        finally:
            with self._lock:
                self._in_flight -= 1
        if fail:
            return 500, {"error": {"message": "CUDA out of memory (scripted)", "type": "server_error"}}
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(text, self.dimension)}
            for i, text in enumerate(texts)
        ]
        return 200, {"object": "list", "data": data, "model": self.model, "usage": {"prompt_tokens": len(texts)}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path != "/v1/models":
                    self._reply(404, {"error": {"message": "no route"}})
                    return
                self._reply(200, {"object": "list", "data": [{"id": fake.model, "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                if self.path != "/v1/embeddings":
                    self._reply(404, {"error": {"message": "no route"}})
                    return
                self._reply(*fake._embeddings(body))

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
