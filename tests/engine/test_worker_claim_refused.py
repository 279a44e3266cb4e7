"""The embedding worker when PostgreSQL refuses to lease chunks (a trigger on the claim's UPDATE, here a data
exception whose message and DETAIL line quote the chunk's text, as PostgreSQL's own DETAIL lines quote row values)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from async_wait import wait_until
from embedding_service_fake import EmbeddingServiceFake
from engine_kit import scalar, seed_documents

from appliance.embedding_config import EmbeddingWorkerConfig
from quart_app.background_loops import BackgroundLoops
from quart_app.chunking.chunker import TokenChunker
from quart_app.runtimes.embedding_client import EmbeddingClient
from quart_app.services.embedding_worker import EmbeddingWorker
from quart_app.store import Database

# refuses the UPDATE that leases a chunk; its message and DETAIL quote the chunk's text (a user's document)
REFUSE_CLAIMS = (
    "CREATE FUNCTION refuse_claims() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF NEW.lease_token IS NOT NULL AND OLD.lease_token IS DISTINCT FROM NEW.lease_token THEN"
    " RAISE EXCEPTION 'leasing refused: %', NEW.text USING ERRCODE = 'data_exception', DETAIL = 'chunk: ' || NEW.text;"
    " END IF; RETURN NEW; END $$;"
    " CREATE TRIGGER refuse_claims BEFORE UPDATE ON chunks FOR EACH ROW EXECUTE FUNCTION refuse_claims()"
)
# a data exception (class 22) from a trigger, and a CHECK constraint (class 23): both refuse every claim alike
REFUSALS = {
    "trigger": (
        REFUSE_CLAIMS,
        "DROP TRIGGER refuse_claims ON chunks",
        "DataException: SQLSTATE 22000, data exception; PostgreSQL's message withheld: it may quote a value",
    ),
    "check": (
        "ALTER TABLE chunks ADD CONSTRAINT never_leased CHECK (lease_token IS NULL) NOT VALID",
        "ALTER TABLE chunks DROP CONSTRAINT never_leased",
        'CheckViolation: new row for relation "chunks" violates check constraint "never_leased"',
    ),
}


async def test_a_refused_claim_logs_the_database_errors_condition_without_its_text(
    db: Database, chunker: TokenChunker, caplog: pytest.LogCaptureFixture
) -> None:
    await seed_documents(db, chunker, 1)
    async with db.connection() as conn:
        await conn.execute(REFUSE_CLAIMS.encode())
    config = EmbeddingWorkerConfig.model_validate({"workers": 1, "idle_poll_s": 0.05})
    loops = BackgroundLoops()

    async def refused_twice() -> bool:
        status = loops.snapshot().get("embedding_worker_0", {})
        return bool(status.get("counters", {}).get("store_refusals", 0) >= 2)

    with (
        caplog.at_level(logging.DEBUG, logger="quart_app.services"),
        EmbeddingServiceFake() as service,
    ):
        async with (
            EmbeddingClient(service.url, send_input_type=False, timeout_s=30) as client,
            EmbeddingWorker(db, client, config, loops),
        ):
            await wait_until(refused_twice, "the worker to try claiming twice", timeout_s=20)
    await loops.close()
    assert "SQLSTATE 22000, data exception; PostgreSQL's message withheld: it may quote a value" in caplog.text
    assert "leasing refused" not in caplog.text
    assert "Context Chat indexes every document" not in caplog.text
    assert "chunk:" not in caplog.text


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
async def test_a_database_that_refuses_every_claim_is_reported_as_failed_not_as_unavailable(
    db: Database, chunker: TokenChunker, refusal: str, caplog: pytest.LogCaptureFixture
) -> None:
    total = await seed_documents(db, chunker, 1)
    refuse, allow, reason = REFUSALS[refusal]
    async with db.connection() as conn:
        await conn.execute(refuse.encode())
    config = EmbeddingWorkerConfig.model_validate({"workers": 1, "idle_poll_s": 0.05})
    loops = BackgroundLoops()

    def worker_status() -> dict[str, Any]:
        return loops.snapshot().get("embedding_worker_0", {})

    async def refused_three_times() -> bool:
        return bool(worker_status().get("counters", {}).get("store_refusals", 0) >= 3)

    async def all_embedded() -> bool:
        return bool(await scalar(db, "SELECT count(*) FROM chunks WHERE embed_state = 'embedded'") == total)

    with (
        caplog.at_level(logging.INFO, logger="quart_app.services.embedding_worker"),
        EmbeddingServiceFake() as service,
    ):
        async with (
            EmbeddingClient(service.url, send_input_type=False, timeout_s=30) as client,
            EmbeddingWorker(db, client, config, loops) as worker,
        ):
            await wait_until(refused_three_times, "the worker to be refused three times", timeout_s=20)
            report = worker_status()
            assert (report["state"], report["detail"]) == (
                "failed",
                f"the database refuses the embedding worker's statements ({reason}): embedding is stopped until it"
                " is fixed; check the triggers, constraints and grants on the app's tables, the PostgreSQL log names"
                " the statement",
            )
            errors = [r for r in caplog.records if r.levelno == logging.ERROR]
            # one ERROR for the refusal, not one per retry
            assert [r.getMessage() for r in errors] == [f"embedding worker 0: {report['detail']}"]
            assert "store unavailable" not in caplog.text
            async with db.connection() as conn:
                await conn.execute(allow.encode())
            worker.wake()
            await wait_until(all_embedded, "the worker to embed the queue once the database accepts its claims")
            assert worker_status()["state"] != "failed"
    await loops.close()
