"""The engine's opening after POST /init's fetch meets an external embedding service that cannot be reached: as at
start-up, an outage that passes by itself (one warning with what to do, no traceback, 503 + cc-retry naming the wait on
the routes), and the engine opens by itself once the service answers."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from async_wait import wait_until
from contract_kit import A_SHARE, running_app, signed_headers
from embedder_program import EmbedderProgram
from model_server import ModelServer
from nextcloud_ocs_fake import FakeAppApiNextcloud
from test_init_opens_engine import _downloading_settings, _minilm_files, _reported_progress

from quart_app import create_app
from quart_app.lifecycle import STATE_EXTENSION
from quart_app.services import embedder_outage


async def test_an_embedding_service_away_after_the_fetch_is_waited_for_as_at_start_up(
    tmp_path: Path,
    fresh_dsn: str,
    minilm_paths: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before, the opening after the fetch took the refusal for a bug: a traceback per attempt, retries up to every 5
    minutes, and a bare 503 ('waiting for POST /init to fetch the models') with no cc-retry on the routes."""
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(embedder_outage, "EMBEDDER_STARTUP_GRACE_S", 1.0)
    files = await _minilm_files(minilm_paths)
    program = EmbedderProgram(tmp_path / "embedder.log")
    await asyncio.to_thread(program.start)
    last: dict[str, Any] = {}
    try:
        with ModelServer(files) as models, FakeAppApiNextcloud() as nextcloud:
            # external (workers 0): the engine asks the service for its model
            external = {"base_url": program.url, "workers": 0, "chunk_tokens": 96, "chunk_overlap_tokens": 8}
            settings = _downloading_settings(
                tmp_path, fresh_dsn, program.url, models, files, nextcloud.url, embedding=external
            )
            app = create_app(settings)
            app.extensions[STATE_EXTENSION].init_job.open_retry_base_s = 0.05
            async with running_app(app) as test_app:
                client = test_app.test_client()
                await client.put("/enabled?enabled=1", headers=signed_headers())
                # the engine found the service and waits for the models; then the service goes away
                await asyncio.to_thread(program.stop)
                assert (await client.post("/init", headers=signed_headers())).status_code == 200

                async def waits() -> bool:
                    refused = await client.post("/updateAccess", json=A_SHARE, headers=signed_headers())
                    last.update(code=refused.status_code, retry=refused.headers.get("cc-retry"))
                    last["error"] = (await refused.get_json())["error"]
                    return "waiting for the embedding service" in last["error"]

                await wait_until(waits, "the routes to name the wait for the embedding service")
                await wait_until(_reported_progress(nextcloud, 99), "POST /init to report the failed opening")
                await asyncio.to_thread(program.start)
                await wait_until(_reported_progress(nextcloud, 100), "the engine to open once the service is back", 180)
                counted = await client.post("/countIndexedDocuments", headers=signed_headers())
                assert counted.status_code == 200, await counted.get_data(as_text=True)
    finally:
        program.stop()
    assert (last["code"], last["retry"]) == (503, "true"), last
    assert last["error"].startswith("Error: the engine is not open: it is waiting for the embedding service ("), last
    opening = [r for r in caplog.records if r.name == "quart_app.lifecycle" and "did not open" in r.getMessage()]
    assert [(r.levelname, r.exc_info) for r in opening] == [("WARNING", None)]
    assert "check embedding.base_url (CC_EM_BASE_URL)" in opening[0].getMessage()
