"""A local HTTP file server with Range support (206 / 416), recording every request, for the model fetcher."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from local_http_server import LocalHttpFake, LocalHttpServer


@dataclass
class ModelServer(LocalHttpFake):
    """Serves `files` (path -> bytes) on 127.0.0.1; `honour_range=False` makes it answer 200 to Range requests."""

    files: dict[str, bytes]
    honour_range: bool = True
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)

    def __post_init__(self) -> None:
        self._http = LocalHttpServer(self._handler())

    def url(self, path: str) -> str:
        base_url: str = self._http.base_url
        return base_url + path

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                data = server.files.get(self.path)
                if data is None:
                    self._reply(404, b"not found")
                    return
                match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
                if match and server.honour_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                        return
                    headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
                    self._reply(206, data[start:], headers)
                    return
                self._reply(200, data)

            def _reply(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


def catalogue_yaml(entries: list[dict[str, Any]]) -> str:
    """A model catalogue in models/catalogue.yaml's format."""
    import yaml

    return str(yaml.safe_dump({"models": entries}))


def url_model(
    model_id: str, url: str, sha256: str | None, size: int | None, filename: str = "model.onnx"
) -> dict[str, Any]:
    return {
        "id": model_id,
        "kind": "embedding",
        "format": "onnx",
        "dimension": 8,
        "max_tokens": 64,
        "licence": "MIT",
        "source": {"url": url, "filename": filename, "sha256": sha256, "size": size},
    }
