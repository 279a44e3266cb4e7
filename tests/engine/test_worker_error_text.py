"""An embedding service whose error message about the texts holds a NUL character (JSON "\\u0000", or a binary body):
PostgreSQL text cannot hold it, so recording the chunks' failure raised a DataError, taken for a database outage:
the batch was claimed again first, forever, and /status said "store unavailable". The error is stored without it."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from async_wait import wait_until
from engine_kit import rows, scalar, seed_documents
from local_http_server import LocalHttpServer

from appliance.config import EmbeddingWorkerConfig
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database


class RefusingService(BaseHTTPRequestHandler):
    """Answers every embedding request 400 (an error about the texts), with a NUL in the message."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.dumps({"error": {"message": "input rejected at byte \u0000"}}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return None


async def test_an_error_message_with_a_nul_character_fails_the_chunks_instead_of_stalling_the_queue(
    db: Database, chunker: TokenChunker
) -> None:
    total = await seed_documents(db, chunker, 1)
    config = EmbeddingWorkerConfig.model_validate(
        {"workers": 1, "batch_tokens": 100_000, "idle_poll_s": 0.2, "max_attempts": 1}
    )

    async def nothing_queued() -> bool:
        return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0)

    with LocalHttpServer(RefusingService) as service:
        url = f"{service.base_url}/v1"
        async with (
            EmbeddingClient(url, send_input_type=False, timeout_s=30) as client,
            EmbeddingWorker(db, client, config),
        ):
            await wait_until(nothing_queued, "the queue to settle", timeout_s=20)
    assert await rows(db, "SELECT embed_state, last_error, count(*) FROM chunks GROUP BY 1, 2") == [
        ("failed", f"POST {url}/embeddings answered 400: input rejected at byte ", total)
    ]
