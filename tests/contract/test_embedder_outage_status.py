"""GET /status while the embedding service is down: the admin sees the worker waiting for it, since when and why,
and indexing resumes by itself once the real embedder program is started again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from async_wait import wait_until
from contract_kit import SourcePart, contract_config, guzzle_multipart, make_settings, running_app, signed_headers
from embedder_program import EmbedderProgram

from quart_app import create_app

MAX_ATTEMPTS = 2
TEXT = (
    "Solar panels on the school roof produce more power in June than the building uses.\n\n"
    "The surplus goes to the neighbourhood grid, and the school is paid for every kilowatt hour.\n\n"
)


async def test_status_shows_the_worker_waiting_for_the_embedder_and_indexing_resumes_when_it_is_back(
    tmp_path: Path, fresh_dsn: str, stoppable_embedder: EmbedderProgram
) -> None:
    worker = {
        "idle_poll_s": 0.2,
        "max_attempts": MAX_ATTEMPTS,
        "backoff_base_s": 0.05,
        "outage_backoff_base_s": 0.05,
        "outage_backoff_max_s": 0.2,
    }
    app = create_app(
        make_settings(tmp_path / "storage", fresh_dsn, contract_config(stoppable_embedder.url, embedding_worker=worker))
    )
    stopped_at = time.time()
    stoppable_embedder.stop()
    async with running_app(app) as test_app:
        client = test_app.test_client()
        await client.put("/enabled?enabled=1", headers=signed_headers())
        body, content_type = guzzle_multipart([SourcePart("files__default: 1", (TEXT * 20).encode())])
        response = await client.put(
            "/loadSources", data=body, headers={**signed_headers(), "Content-Type": content_type}
        )
        assert (await response.get_json())["loaded_sources"] == ["files__default: 1"]
        report: dict[str, Any] = {}

        async def waiting_for_the_embedder() -> bool:
            report.update(await (await client.get("/status", headers=signed_headers())).get_json())
            waiting = report["loops"]["embedding_worker_0"]["state"] == "waiting_for_embedder"
            return bool(waiting and report["embedder"]["failed_calls"] >= 5 * MAX_ATTEMPTS)

        await wait_until(waiting_for_the_embedder, "/status to show the worker waiting for the stopped embedder")
        embedder = report["embedder"]
        assert embedder["state"] == "unavailable"
        assert stopped_at <= embedder["unavailable_since"] <= time.time()
        assert embedder["last_error"].startswith(
            f"cannot reach the embedding service at {stoppable_embedder.url}/embeddings: ConnectError:"
        )
        assert 0 <= embedder["next_try_in_s"] <= worker["outage_backoff_max_s"]
        assert report["loops"]["embedding_worker_0"]["detail"] == embedder["last_error"]
        # five times the calls that would have used up every chunk's attempts: all still queued, none failed
        assert report["chunks"]["queued"] > 0
        assert (report["chunks"]["embedded"], report["chunks"]["failed"]) == (0, 0)
        queued = report["chunks"]["queued"]

        stoppable_embedder.start()

        async def indexing_resumed() -> bool:
            report.update(await (await client.get("/status", headers=signed_headers())).get_json())
            return bool(report["chunks"]["queued"] == 0)

        await wait_until(indexing_resumed, "the queued chunks to be embedded once the embedder is back")
    assert (report["chunks"]["embedded"], report["chunks"]["failed"]) == (queued, 0)
    assert report["embedder"] == {
        "state": "available",
        "unavailable_since": None,
        "last_error": None,
        "failed_calls": 0,
        "next_try_in_s": None,
    }
