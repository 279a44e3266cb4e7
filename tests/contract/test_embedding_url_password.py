"""A CC_EM_BASE_URL with `user:password@` reaches neither GET /status nor the logs: an external embedding service
that fails every request leaves its errors in /status (chunk failures) and in the logs, each naming the URL with the
password hidden."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from async_wait import wait_until
from contract_kit import SourcePart, enable_and_load, external_services_env, running_app, signed_headers
from embedding_service_fake import EmbeddingServiceFake

from appliance.json_logging import QUIET_LOGGERS
from appliance.storage import StorageLayout
from quart_app import create_app
from quart_app.app_settings import AppSettings

PASSWORD = "hunter2-em"


async def test_a_password_in_cc_em_base_url_is_hidden_in_status_and_logs(
    tmp_path: Path, fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = StorageLayout(tmp_path / "storage")
    storage.ensure()
    (storage.root / "config.yaml").write_text(
        "embedding:\n  chunk_tokens: 96\n"
        "embedding_worker:\n  idle_poll_s: 0.2\n  max_attempts: 1\n  backoff_base_s: 0.05\n"
        "llm:\n  extractive: {}\n"
        "ingest:\n  parse_workers: 1\n"
    )
    # as the appliance's logging has them (their per-request INFO lines print the URL as given); the last call sets
    # the capturing handler's level
    for name in QUIET_LOGGERS:
        caplog.set_level(logging.WARNING, logger=name)
    caplog.set_level(logging.DEBUG)
    # answers GET /models, then 500 to every embedding request
    with EmbeddingServiceFake(model="external-embed", dimension=8, fail_next=1000) as fake:
        with_password = fake.url.replace("http://", f"http://alice:{PASSWORD}@")
        environ = external_services_env(storage.root, fresh_dsn, with_password)
        async with running_app(create_app(AppSettings.from_env(environ))) as test_app:
            client = test_app.test_client()
            await enable_and_load(client, SourcePart("files__default: 1", b"Open data for green labels."))

            async def chunks_failed() -> bool:
                report = await (await client.get("/status", headers=signed_headers())).get_json()
                return bool(report["chunks"]["failed"] > 0)

            await wait_until(chunks_failed, "the external service's 500 to fail the chunks")
            status = await (await client.get("/status", headers=signed_headers())).get_json()
    assert fake.failed_requests > 0
    shown = fake.url.replace("http://", "http://alice:***@")
    [reason] = status["chunks"]["failure_reasons"]
    assert reason.startswith(f"POST {shown}/embeddings answered 500: CUDA out of memory (scripted)")
    assert PASSWORD not in json.dumps(status)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"embedding client for {shown} (model external-embed, auth none)" in logged
    assert PASSWORD not in logged
