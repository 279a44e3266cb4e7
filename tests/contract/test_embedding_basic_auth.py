"""CC_EM_USERNAME and CC_EM_PASSWORD, as upstream documents them: HTTP Basic auth for the external embedding service
in CC_EM_BASE_URL (CC_EM_APIKEY wins when set too). The app opens against a service that refuses anything else,
indexes a document through it, and the password reaches neither the logs nor GET /status."""

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

from appliance.config import parse_config
from quart_app import create_app
from quart_app.app_settings import AppSettings

PASSWORD = "hunter2-basic"


async def test_cc_em_username_and_password_authenticate_to_the_external_service(
    tmp_path: Path, fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = external_services_storage(tmp_path / "storage")
    logged = capture_app_logs(caplog)
    with EmbeddingServiceFake(model="external-embed", dimension=8, basic_auth=("alice", PASSWORD)) as fake:
        environ = {
            **external_services_env(storage.root, fresh_dsn, fake.url),
            "CC_EM_USERNAME": "alice",
            "CC_EM_PASSWORD": PASSWORD,
        }
        async with running_app(create_app(AppSettings.from_env(environ))) as test_app:
            client = test_app.test_client()
            await enable_and_load(client, SourcePart("files__default: 1", b"Open data for green labels."))
            status = await status_when(
                client, lambda report: report["chunks"]["embedded"] > 0, "the chunks embedded by the external service"
            )
    assert fake.unauthorized == 0 and fake.requests > 0
    assert PASSWORD not in json.dumps(status)
    assert f"embedding client for {fake.url} (model external-embed, auth basic)" in logged()
    assert PASSWORD not in logged()


@pytest.mark.parametrize(
    ("extra", "username", "password", "api_key"),
    [
        ({"CC_EM_USERNAME": "alice", "CC_EM_PASSWORD": PASSWORD}, "alice", PASSWORD, None),
        # upstream takes the API key first, and Basic auth only as a pair
        ({"CC_EM_USERNAME": "alice", "CC_EM_PASSWORD": PASSWORD, "CC_EM_APIKEY": "sk-1"}, None, None, "sk-1"),
        ({"CC_EM_USERNAME": "alice"}, None, None, None),
    ],
    ids=["basic", "api-key-wins", "user-without-password"],
)
def test_basic_credentials_come_from_the_environment_as_upstream_reads_them(
    extra: dict[str, str], username: str | None, password: str | None, api_key: str | None
) -> None:
    config = parse_config({}, environ={"CC_EM_BASE_URL": "http://tei.example:8080/v1", **extra})
    assert (config.embedding.username, config.embedding.password, config.embedding.api_key) == (
        username,
        password,
        api_key,
    )
    assert PASSWORD not in repr(config)
