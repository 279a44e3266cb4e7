"""A question asked while PostgreSQL is away: the PHP app ≤ 5.3 turns any answer carrying `cc-retry: true` into
RetryIndexException("At least one source is already being processed from another request, retry in some time")
(LangRopeService::requestToExApp), which its indexing jobs re-queue but a chat or search task shows as its error.
Seen on a real Nextcloud 34 with context_chat 5.3.1: `occ context_chat:prompt` during an outage printed that text.
So /query and /docSearch answer the outage's 503 without cc-retry (PHP then shows our message naming PostgreSQL),
while the indexing routes keep it (their callers re-queue the work). So does /countIndexedDocuments: `occ
context_chat:stats` printed the same text, and the admin page's statistics (AdminSettings.php 5.3.1,
StatisticsService.php 5.4.0) catch only RuntimeException, which RetryIndexException is not."""

from __future__ import annotations

from pathlib import Path

from async_wait import wait_until
from contract_kit import contract_config, make_settings, running_app, signed_headers
from local_ports import free_port

from quart_app import create_app

# nothing listens there: opening the engine calls no embedder with a catalogued local model
NO_EMBEDDER = "http://127.0.0.1:9/v1"
QUESTIONS = (
    ("/query", {"userId": "anna", "query": "When do the tomatoes ripen?"}),
    ("/docSearch", {"userId": "anna", "query": "tomatoes", "ctxLimit": 5}),
)


async def test_a_question_or_the_statistics_while_postgres_is_away_is_a_503_naming_it_without_cc_retry(
    tmp_path: Path,
) -> None:
    raw = contract_config(NO_EMBEDDER, http={"start_up_wait_s": 0.1}, pgvector={"connect_timeout_s": 0.5})
    nothing_listens = f"postgresql://ccb@127.0.0.1:{free_port()}/ccb"
    app = create_app(make_settings(tmp_path / "storage", nothing_listens, raw))
    async with running_app(app) as test_app:
        client = test_app.test_client()
        await client.put("/enabled?enabled=1", headers=signed_headers())

        async def named() -> bool:
            answer = await client.post("/query", json=QUESTIONS[0][1], headers=signed_headers("anna"))
            return "the engine is waiting for PostgreSQL" in str((await answer.get_json())["error"])

        await wait_until(named, "the question's answer to name the database outage", timeout_s=30)
        for path, body in QUESTIONS:
            answer = await client.post(path, json=body, headers=signed_headers("anna"))
            error = (await answer.get_json())["error"]
            assert (answer.status_code, answer.headers.get("cc-retry")) == (503, None), (path, error)
            assert error.startswith("Error: the engine is waiting for PostgreSQL"), (path, error)
        counted = await client.post("/countIndexedDocuments", headers=signed_headers())
        error = (await counted.get_json())["error"]
        assert (counted.status_code, counted.headers.get("cc-retry")) == (503, None), error
        assert error.startswith("Error: the engine is waiting for PostgreSQL"), error
        # a delete's caller (the PHP app's ActionJob) keeps the action queued on the same 503: it keeps cc-retry
        delete = await client.post(
            "/deleteSources", json={"sourceIds": ["files__default: 1"]}, headers=signed_headers()
        )
        assert (delete.status_code, delete.headers.get("cc-retry")) == (503, "true")
