"""An embedding service whose error message about the texts holds a NUL character (JSON "\\u0000", or a binary body):
PostgreSQL text cannot hold it, so recording the chunks' failure raised a DataError, taken for a database outage:
the batch was claimed again first, forever, and /status said "store unavailable". The error is stored without it."""

from __future__ import annotations

from async_wait import wait_until
from embedding_service_fake import EmbeddingServiceFake
from engine_kit import rows, scalar, seed_documents

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database


async def test_an_error_message_with_a_nul_character_fails_the_chunks_instead_of_stalling_the_queue(
    db: Database, chunker: TokenChunker
) -> None:
    total = await seed_documents(db, chunker, 1)
    config = EmbeddingWorkerConfig.model_validate(
        {"workers": 1, "batch_tokens": 100_000, "idle_poll_s": 0.2, "max_attempts": 1}
    )

    async def nothing_queued() -> bool:
        return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0)

    with EmbeddingServiceFake(refusal="input rejected at byte \u0000") as service:
        url = service.url
        async with (
            EmbeddingClient(url, send_input_type=False, timeout_s=30) as client,
            EmbeddingWorker(db, client, config),
        ):
            await wait_until(nothing_queued, "the queue to settle", timeout_s=20)
    assert await rows(db, "SELECT embed_state, last_error, count(*) FROM chunks GROUP BY 1, 2") == [
        (
            "failed",
            f"POST {url}/embeddings answered 400: the service refused the request or its texts (input rejected at"
            " byte )",
            total,
        )
    ]
