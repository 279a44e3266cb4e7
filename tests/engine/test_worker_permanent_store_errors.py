"""The embedding worker when PostgreSQL refuses a batch's write for good (a constraint or a data error, not a lost
connection): the worker took it for an outage, gave the batch back and claimed it again first, forever, so indexing
stood still with "store unavailable" in /status. Now only the refused chunk fails, with the database's reason."""

from __future__ import annotations

import logging

import pytest
from async_wait import wait_until
from embedding_service_fake import EmbeddingServiceFake
from engine_kit import rows, scalar, seed_documents

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.services.status import status
from quart_app.store import Database

# one chunk of the first document: the database refuses any vector for it
REFUSED = "source_id = 'files__default: 0' AND ordinal = 1"
# a CHECK constraint (class 23, integrity) and a trigger raising a data exception (class 22)
REFUSALS = {
    "check": (
        f"ALTER TABLE chunks ADD CONSTRAINT no_vector_for_one CHECK (embedding IS NULL OR NOT ({REFUSED})) NOT VALID",
        'new row for relation "chunks" violates check constraint "no_vector_for_one"',
    ),
    "trigger": (
        "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.embedding IS NOT NULL AND NEW.{REFUSED.replace(' ordinal', ' NEW.ordinal')} THEN"
        " RAISE EXCEPTION 'vector refused' USING ERRCODE = 'data_exception'; END IF; RETURN NEW; END $$;"
        " CREATE TRIGGER refuse_one BEFORE UPDATE ON chunks FOR EACH ROW EXECUTE FUNCTION refuse_one()",
        "SQLSTATE 22000, data exception; PostgreSQL's message withheld: it may quote a value",
    ),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
async def test_a_vector_the_database_refuses_fails_its_chunk_and_the_queue_goes_on(
    db: Database, chunker: TokenChunker, refusal: str, caplog: pytest.LogCaptureFixture
) -> None:
    total = await seed_documents(db, chunker, 3)
    sql, reason = REFUSALS[refusal]
    async with db.connection() as conn:
        await conn.execute(sql.encode())
    config = EmbeddingWorkerConfig.model_validate(
        {"workers": 1, "batch_tokens": 100_000, "idle_poll_s": 0.2, "max_attempts": 3}
    )

    async def nothing_queued() -> bool:
        return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'queued'") == 0)

    with (
        caplog.at_level(logging.WARNING, logger="quart_app.services"),
        EmbeddingServiceFake() as service,
    ):
        async with (
            EmbeddingClient(service.url, send_input_type=False, timeout_s=30) as client,
            EmbeddingWorker(db, client, config),
        ):
            await wait_until(nothing_queued, "the queue to empty", timeout_s=20)
    states = await rows(db, "SELECT embed_state, count(*) FROM chunks GROUP BY 1 ORDER BY 1")
    assert states == [("embedded", total - 1), ("failed", 1)]
    expected = f"the database refused this chunk's vector: {reason}"
    failed = await rows(db, f"SELECT last_error FROM chunks WHERE embed_state = 'failed' AND {REFUSED}")
    assert failed == [(expected,)]
    assert await scalar(db, "SELECT count(*) FROM chunks WHERE lease_token IS NOT NULL") == 0
    assert (await status(db))["chunks"]["failure_reasons"] == {expected: 1}
    assert f"embedding batch of 1 chunks failed (fatal): {expected}" in caplog.text
    assert "store unavailable" not in caplog.text
