"""An external embedding service that answers NaN or Infinity for a text (a Python server's json.dumps writes them;
an fp16 model can overflow on one input): pgvector refuses such a vector, so the batch's write failed as a database
error, the batch was given back untouched and claimed again first, and the queue stood still for good behind it with
"store unavailable" in /status. The client now refuses such a vector as an error about that text."""

from __future__ import annotations

import math

import httpx
from async_wait import wait_until
from embedding_service_fake import EmbeddingServiceFake
from engine_kit import rows, scalar, seed_documents

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database

POISON = "a text the service answers NaN for"


async def test_a_vector_with_nan_fails_its_chunk_and_the_queue_goes_on(db: Database, chunker: TokenChunker) -> None:
    total = await seed_documents(db, chunker, 2)
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash)"
            " VALUES ('files__default: 0', 1, 99, %s, 0, 8, '\\x01')",
            (POISON,),
        )
    config = EmbeddingWorkerConfig.model_validate(
        {"workers": 1, "batch_tokens": 100_000, "idle_poll_s": 0.2, "max_attempts": 1}
    )
    with EmbeddingServiceFake(nan_texts=frozenset({POISON})) as service:
        async with EmbeddingClient(service.url, send_input_type=False, timeout_s=30) as client:
            assert math.isnan(await _raw_first_value(service))
            async with EmbeddingWorker(db, client, config):

                async def nothing_queued() -> bool:
                    return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0)

                await wait_until(nothing_queued, "the queue to empty", timeout_s=20)
    states = await rows(db, "SELECT embed_state, count(*) FROM chunks GROUP BY 1 ORDER BY 1")
    assert states == [("embedded", total), ("failed", 1)]
    error = await scalar(db, "SELECT last_error FROM chunks WHERE embed_state = 'failed'")
    assert error == (
        f"the embedding service at {service.url} returned an embedding with a value that is not a finite 32-bit"
        " float (NaN, infinity or beyond 3.4e38)"
    )


async def _raw_first_value(service: EmbeddingServiceFake) -> float:
    """The fake really answers NaN (parsed as Python's json does)."""
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{service.url}/embeddings", json={"input": [POISON]})
    value: float = response.json()["data"][0]["embedding"][0]
    return value
