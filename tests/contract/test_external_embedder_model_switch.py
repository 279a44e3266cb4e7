"""An external embedding service whose model changes behind its URL: checked against the stored vectors.

While the app runs, vectors of another dimension pause embedding (attempts untouched, the reason on /status) instead
of failing every chunk; a restart binds the new model and re-embeds everything, as appinfo/info.xml promises.
"""

from __future__ import annotations

from pathlib import Path

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


async def _load(client: Client, source_id: str) -> None:
    await load_text(client, source_id, TEXT.replace("Green", source_id))


def _chunk_states(dsn: str) -> list[tuple[str, str, int, int | None]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT source_id, embed_state, attempts, vector_dims(embedding) FROM chunks ORDER BY source_id, ordinal"
        ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2]), r[3]) for r in rows]


async def test_a_model_switched_behind_the_url_pauses_embedding_then_a_restart_re_embeds(
    tmp_path: Path, fresh_dsn: str
) -> None:
    worker = {"idle_poll_s": 0.2, "outage_backoff_base_s": 0.05, "outage_backoff_max_s": 0.2, "max_attempts": 2}
    with EmbeddingServiceFake(model="fake-embed-8", dimension=8) as fake:
        raw = contract_config(fake.url, embedding_worker=worker)
        raw["embedding"] = {**raw["embedding"], "workers": 0}
        app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
        async with running_app(app) as test_app:
            client = test_app.test_client()
            await client.put("/enabled?enabled=1", headers=signed_headers())
            assert (await status_report(client))["embedding_model"] == {"id": "fake-embed-8", "dimension": 8}
            await _load(client, "files__default: 1")

            await status_when(client, all_embedded, "the first document's chunks to be embedded with 8-d vectors")

            fake.model, fake.dimension = "fake-embed-16", 16
            await _load(client, "files__default: 2")
            report = await status_when(client, embedder_paused_after(5), "the worker to pause on the 16-d vectors")
            assert report["embedder"]["last_error"] == (
                "the embedding service returned 16-d vectors, but the stored vectors are 8-d from model"
                " 'fake-embed-8': the service now serves another model. Restart the app to bind the new model and"
                " re-embed every chunk with it, or point embedding.base_url / CC_EM_BASE_URL back at 'fake-embed-8';"
                " embedding waits until then"
            )
            # more calls than max_attempts, yet no chunk failed or used an attempt
            second = [row for row in _chunk_states(fresh_dsn) if row[0] == "files__default: 2"]
            assert second and all(row[1:] == ("queued", 0, None) for row in second)
            assert report["chunks"]["failed"] == 0

        # a restart against the switched service binds the new model and re-embeds every chunk
        app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
        async with running_app(app) as test_app:
            client = test_app.test_client()
            assert (await status_report(client))["embedding_model"] == {"id": "fake-embed-16", "dimension": 16}
            await status_when(client, all_embedded, "every chunk to be re-embedded with 16-d vectors")
    states = _chunk_states(fresh_dsn)
    assert {row[0] for row in states} == {"files__default: 1", "files__default: 2"}
    assert {row[1:] for row in states} == {("embedded", 0, 16)}
