"""An external embedding service swapped to another model of the SAME dimension behind its URL: vectors of the two
models were mixed in one index without a word, and searches compared queries of one model with chunks of the other.
The model id the service's responses name is recorded with the index and compared on every batch and at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from contract_kit import (
    all_embedded,
    contract_config,
    embedder_paused_after,
    load_text,
    make_settings,
    running_app,
    signed_headers,
    status_report,
    status_when,
)
from embedding_service_fake import EmbeddingServiceFake
from quart.typing import TestClientProtocol as Client

from quart_app import create_app

TEXT = "Green labels need open data about the supply chain.\n\n" * 12
WORKER = {"idle_poll_s": 0.2, "outage_backoff_base_s": 0.05, "outage_backoff_max_s": 0.2, "max_attempts": 2}


async def _load(client: Client, source_id: str) -> None:
    await load_text(client, source_id, TEXT.replace("Green", source_id))


def _chunk_states(dsn: str, source_id: str) -> set[tuple[str, int, bool]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT embed_state, attempts, embedding IS NOT NULL FROM chunks WHERE source_id = %s", (source_id,)
        ).fetchall()
    return {(str(r[0]), int(r[1]), bool(r[2])) for r in rows}


def _external_config(url: str) -> dict[str, Any]:
    raw: dict[str, Any] = contract_config(url, embedding_worker=WORKER)
    raw["embedding"] = {**raw["embedding"], "workers": 0}
    return raw


async def test_a_model_of_the_same_dimension_switched_while_running_pauses_embedding_instead_of_mixing(
    tmp_path: Path, fresh_dsn: str
) -> None:
    with EmbeddingServiceFake(model="fake-embed-a", dimension=8) as fake:
        raw = _external_config(fake.url)
        app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
        async with running_app(app) as test_app:
            client = test_app.test_client()
            await client.put("/enabled?enabled=1", headers=signed_headers())
            await _load(client, "files__default: 1")
            await status_when(client, all_embedded, "the first document to be embedded by model a")

            fake.model = "fake-embed-b"
            await _load(client, "files__default: 2")
            report = await status_when(
                client, embedder_paused_after(3), "the worker to pause on the responses naming model b"
            )
            assert report["embedder"]["last_error"] == (
                "the embedding service's responses name model 'fake-embed-b', but the stored vectors come from"
                " 'fake-embed-a': the service now serves another model. Restart the app to bind the new model and"
                " re-embed every chunk with it, or point embedding.base_url / CC_EM_BASE_URL back at 'fake-embed-a';"
                " embedding waits until then"
            )
            # no vector of model b was stored, and waiting used none of the chunks' attempts
            assert _chunk_states(fresh_dsn, "files__default: 2") == {("queued", 0, False)}

        # the restart binds model b (GET /v1/models names it) and re-embeds both documents with it
        app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
        async with running_app(app) as test_app:
            client = test_app.test_client()
            assert (await status_report(client))["embedding_model"] == {"id": "fake-embed-b", "dimension": 8}
            await status_when(client, all_embedded, "every chunk to be embedded by model b")
    for source_id in ("files__default: 1", "files__default: 2"):
        assert _chunk_states(fresh_dsn, source_id) == {("embedded", 0, True)}


async def test_a_service_without_a_model_list_swapped_while_the_app_was_down_is_re_embedded_at_start(
    tmp_path: Path, fresh_dsn: str
) -> None:
    with EmbeddingServiceFake(model="fake-embed-a", dimension=8, models_list=False) as fake:
        raw = _external_config(fake.url)
        app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
        async with running_app(app) as test_app:
            client = test_app.test_client()
            await client.put("/enabled?enabled=1", headers=signed_headers())
            await _load(client, "files__default: 1")
            await status_when(client, all_embedded, "the document to be embedded by model a")
        chunk_texts = [text for text, count in fake.texts.items() if "files__default: 1" in text]
        assert chunk_texts and all(fake.texts[text] == 1 for text in chunk_texts)

        fake.model = "fake-embed-b"
        app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
        async with running_app(app) as test_app:
            client = test_app.test_client()
            await status_when(client, all_embedded, "the document to be embedded again by model b")
    # every chunk was embedded again by model b, none kept a vector of model a
    assert all(fake.texts[text] == 2 for text in chunk_texts)
    assert _chunk_states(fresh_dsn, "files__default: 1") == {("embedded", 0, True)}
    with psycopg.connect(fresh_dsn) as conn:
        row = conn.execute("SELECT model_id, dimension, reported_model FROM embedding_model").fetchone()
    assert row == ("external", 8, "fake-embed-b")
