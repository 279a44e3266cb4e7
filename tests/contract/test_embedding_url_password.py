"""A CC_EM_BASE_URL with `user:password@` reaches neither GET /status nor the logs: an external embedding service
that fails every request leaves its errors in /status (chunk failures) and in the logs, each naming the URL with the
password hidden."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from contract_kit import (
    SourcePart,
    capture_app_logs,
    enable_and_load,
    external_services_env,
    external_services_storage,
    running_app,
    status_when,
)
from embedding_service_fake import EmbeddingServiceFake

from quart_app import create_app
from quart_app.app_settings import AppSettings

PASSWORD = "hunter2-em"


async def test_a_password_in_cc_em_base_url_is_hidden_in_status_and_logs(
    tmp_path: Path, fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = external_services_storage(tmp_path / "storage", "  max_attempts: 1\n  backoff_base_s: 0.05\n")
    logged = capture_app_logs(caplog)
    # answers GET /models, then 500 to every embedding request
    with EmbeddingServiceFake(model="external-embed", dimension=8, fail_next=1000) as fake:
        with_password = fake.url.replace("http://", f"http://alice:{PASSWORD}@")
        environ = external_services_env(storage.root, fresh_dsn, with_password)
        async with running_app(create_app(AppSettings.from_env(environ))) as test_app:
            client = test_app.test_client()
            await enable_and_load(client, SourcePart("files__default: 1", b"Open data for green labels."))
            status = await status_when(
                client, lambda report: report["chunks"]["failed"] > 0, "the external service's 500 to fail the chunks"
            )
    assert fake.failed_requests > 0
    shown = fake.url.replace("http://", "http://alice:***@")
    [reason] = status["chunks"]["failure_reasons"]
    assert reason.startswith(
        f"POST {shown}/embeddings answered 500: the service failed with an internal error (CUDA out of memory"
        " (scripted))"
    )
    assert PASSWORD not in json.dumps(status)
    assert f"embedding client for {shown} (model external-embed, auth none)" in logged()
    assert PASSWORD not in logged()
