"""An embedding service that is down is an outage, not a failure of the chunks: the real MiniLM embedder program is
stopped for longer than the chunks' attempts would last, and started again on the same port."""

from __future__ import annotations

from async_wait import wait_until
from embedder_program import EmbedderProgram
from engine_kit import rows, scalar, seed_documents

from appliance.config import parse_config
from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.background_loops import BackgroundLoops, backoff
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database

MAX_ATTEMPTS = 2
# short waits, so the outage outlasts many times what MAX_ATTEMPTS failures would take under a per-attempt rule
FAST = {
    "workers": 1,
    "batch_tokens": 512,
    "idle_poll_s": 60.0,
    "max_attempts": MAX_ATTEMPTS,
    "backoff_base_s": 0.05,
    "backoff_max_s": 0.1,
    "outage_backoff_base_s": 0.05,
    "outage_backoff_max_s": 0.2,
}
BAD_ORDINAL = 99


async def _add_empty_chunk(db: Database) -> None:
    """A chunk the embedder refuses with 400 (empty input): an error about the text itself."""
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO chunks (source_id, version, ordinal, text, start_offset, token_count, text_hash)"
            " VALUES ('files__default: 0', 1, %s, '', 0, 1, '\\x00')",
            (BAD_ORDINAL,),
        )


async def _states(db: Database) -> list[tuple[str, int, int]]:
    return [(str(s), int(a), int(n)) for s, a, n in await rows(db, _STATES)]


_STATES = "SELECT embed_state, attempts, count(*) FROM chunks GROUP BY 1, 2 ORDER BY 1, 2"


def test_the_shipped_outage_backoff_doubles_from_1_s_up_to_15_s() -> None:
    config = parse_config({}, "t", environ={}).embedding_worker
    waits = [backoff(config.outage_backoff_base_s, config.outage_backoff_max_s, n) for n in range(1, 7)]
    assert waits == [1, 2, 4, 8, 15, 15]


async def test_chunks_outlive_an_outage_longer_than_their_attempts_and_are_embedded_once_the_service_is_back(
    db: Database, chunker: TokenChunker, stoppable_embedder: EmbedderProgram
) -> None:
    total = await seed_documents(db, chunker, 3)
    await _add_empty_chunk(db)
    stoppable_embedder.stop()
    loops = BackgroundLoops()
    async with EmbeddingClient(stoppable_embedder.url, timeout_s=30) as client:
        worker = EmbeddingWorker(db, client, EmbeddingWorkerConfig.model_validate(FAST), loops)
        async with worker:

            async def many_calls_failed() -> bool:
                return worker.outage.failed_calls >= 5 * MAX_ATTEMPTS

            await wait_until(many_calls_failed, f"{5 * MAX_ATTEMPTS} refused calls to the stopped embedder")
            # five times the calls that would have failed every chunk: none was counted, none is failed
            assert await _states(db) == [("queued", 0, total + 1)]
            assert await scalar(db, "SELECT count(*) FROM chunks WHERE last_error IS NOT NULL") == 0
            outage = worker.outage.as_json()
            assert outage["state"] == "unavailable" and outage["unavailable_since"] is not None
            assert outage["last_error"].startswith(f"cannot reach the embedding service at {client.base_url}/")

            stoppable_embedder.start()

            async def queue_done() -> bool:
                return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0)

            await wait_until(queue_done, "the queue to drain once the embedder is back")
            assert loops.snapshot()["embedding_worker_0"]["counters"]["chunks_written"] == total
    # the good chunks are embedded; only the chunk the embedder refused failed, after one attempt
    assert await _states(db) == [("embedded", 0, total), ("failed", 1, 1)]
    failed = await rows(db, "SELECT ordinal, last_error FROM chunks WHERE embed_state = 'failed'")
    assert [ordinal for ordinal, _ in failed] == [BAD_ORDINAL]
    assert " answered 400: " in str(failed[0][1])
    assert worker.outage.as_json() == {
        "state": "available",
        "unavailable_since": None,
        "last_error": None,
        "failed_calls": 0,
        "next_try_in_s": None,
    }


async def test_chunks_an_older_version_failed_for_an_outage_are_queued_again_at_start(
    db: Database, chunker: TokenChunker, embedding_client: EmbeddingClient
) -> None:
    total = await seed_documents(db, chunker, 3)
    url = f"{embedding_client.base_url}/embeddings"
    # the last errors our client gave an older version, which counted them as attempts
    outage_errors = [
        f"cannot reach the embedding service at {url}: ConnectError: All connection attempts failed; is it running?",
        f"POST {url} timed out (ReadTimeout, timeout 1800 s); retry later or raise embedding.request_timeout",
        f"POST {url} answered 503: the embedder is shutting down",
        f"POST {url} answered 429: too many requests",
    ]
    input_errors = [
        f"POST {url} answered 400: 'input' holds an empty string at index 0",
        f"POST {url} answered 500: the embedder failed: RuntimeError: bad input",
    ]
    errors = outage_errors + input_errors
    assert total > len(errors)
    ids = [int(row[0]) for row in await rows(db, "SELECT id FROM chunks ORDER BY id")][: len(errors)]
    async with db.connection() as conn:
        for chunk_id, error in zip(ids, errors, strict=True):
            await conn.execute(
                "UPDATE chunks SET embed_state = 'failed', attempts = 6, last_error = %s WHERE id = %s",
                (error, chunk_id),
            )
    async with EmbeddingWorker(db, embedding_client, EmbeddingWorkerConfig.model_validate(FAST)):

        async def requeued_ones_embedded() -> bool:
            return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0)

        await wait_until(requeued_ones_embedded, "the queue to drain")
    assert await _states(db) == [("embedded", 0, total - len(input_errors)), ("failed", 6, len(input_errors))]
    still_failed = await rows(db, "SELECT last_error FROM chunks WHERE embed_state = 'failed' ORDER BY id")
    assert [str(row[0]) for row in still_failed] == input_errors
