"""The tests' AppAPI identity and config; the signer and the Guzzle-shaped multipart are the appliance's client's."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from async_wait import wait_until
from local_ports import free_port as free_port  # re-exported for the tests of this folder
from quart import Quart
from quart.testing import QuartClient
from quart.testing.app import TestApp
from quart.typing import TestClientProtocol
from quart.wrappers import Response
from server_process import ServerProcess as ServerProcess  # re-exported for the tests of this folder

from appliance import app_client
from appliance.app_client import SourcePart as SourcePart  # these two re-exported for the tests
from appliance.app_client import guzzle_multipart as guzzle_multipart
from appliance.config import parse_config
from appliance.json_logging import QUIET_LOGGERS
from appliance.storage import StorageLayout
from quart_app.app_settings import AppSettings

APP_ID = "context_chat_backend"
APP_VERSION = "4.3.0"
AA_VERSION = "5.0.2"
# distinctive so a test can grep the logs for it
APP_SECRET = "s3cret-contract-0123456789abcdef"
# an action the PHP app keeps queued on a 503 + cc-retry (a question's or the statistics' 503 carries no cc-retry)
A_SHARE = {"op": "allow", "userIds": ["bob"], "sourceId": "files__default: 1"}


def signed_headers(
    user: str = "",
    *,
    secret: str = APP_SECRET,
    app_id: str = APP_ID,
    version: str = APP_VERSION,
    aa_version: str | None = AA_VERSION,
) -> dict[str, str]:
    """AppAPI's headers for the tests' identity (the appliance's signer with this kit's defaults)."""
    return app_client.signed_headers(user, secret=secret, app_id=app_id, version=version, aa_version=aa_version)


def contract_config(embedder_url: str, **overrides: Any) -> dict[str, Any]:
    """A small config: our embedder, the extractive LLM (fast, deterministic), one parser process."""
    raw: dict[str, Any] = {
        "embedding": {"base_url": embedder_url, "workers": 1, "chunk_tokens": 96, "chunk_overlap_tokens": 8},
        "embedding_worker": {"idle_poll_s": 0.2, "backoff_base_s": 0.2},
        "llm": {"extractive": {}},
        "ingest": {"parse_workers": 1, "max_part_mb": 2, "max_request_mb": 8, "max_parts": 20},
        "pgvector": {"pool_max": 4},
    }
    raw.update(overrides)
    return raw


def make_settings(root: Path, dsn: str, raw_config: dict[str, Any], nextcloud_url: str | None = None) -> AppSettings:
    return AppSettings(
        config=parse_config(raw_config, "contract-test", environ={}),
        storage=StorageLayout(root),
        db_url=dsn,
        app_id=APP_ID,
        app_secret=APP_SECRET,
        app_version=APP_VERSION,
        aa_version="5.0.2",
        nextcloud_url=nextcloud_url,
    )


# the lifespan (migrations, engine, models) takes seconds on a loaded 2-core box, where Quart's default 6 s flakes
LIFESPAN_TIMEOUT_S = 120


def running_app(app: Quart) -> TestApp:
    """`app.test_app()` with start-up and shutdown timeouts a loaded machine meets."""
    return TestApp(app, startup_timeout=LIFESPAN_TIMEOUT_S, shutdown_timeout=60)


async def put_sources(client: TestClientProtocol | QuartClient, parts: Sequence[SourcePart]) -> Response:
    """PUT /loadSources with `parts` as the PHP app sends them (Guzzle's multipart, signed)."""
    body, content_type = guzzle_multipart(parts)
    return await client.put("/loadSources", data=body, headers={**signed_headers(), "Content-Type": content_type})


async def enable_and_load(client: TestClientProtocol | QuartClient, part: SourcePart) -> None:
    """Enable the app as AppAPI does and PUT one source through /loadSources, which must take it."""
    await client.put("/enabled?enabled=1", headers=signed_headers())
    response = await put_sources(client, [part])
    assert (await response.get_json())["loaded_sources"] == [part.source_id], await response.get_data(as_text=True)


def external_services_env(storage: Path, dsn: str, embedding_url: str) -> dict[str, str]:
    """AppAPI's variables for an app on an external PostgreSQL and an external embedding service (its model
    `external-embed`)."""
    return {
        "APP_PERSISTENT_STORAGE": str(storage),
        "APP_ID": APP_ID,
        "APP_SECRET": APP_SECRET,
        "APP_VERSION": APP_VERSION,
        "EXTERNAL_DB": dsn,
        "CC_EM_BASE_URL": embedding_url,
        "CC_EM_MODEL_NAME": "external-embed",
    }


def external_services_storage(root: Path, worker_yaml: str = "") -> StorageLayout:
    """A storage whose config.yaml has small chunks, a quick embedding worker (plus `worker_yaml`, indented keys of
    embedding_worker) and the extractive LLM: an app on external services indexes one short document in seconds."""
    storage = StorageLayout(root)
    storage.ensure()
    (storage.root / "config.yaml").write_text(
        "embedding:\n  chunk_tokens: 96\n"
        f"embedding_worker:\n  idle_poll_s: 0.2\n{worker_yaml}"
        "llm:\n  extractive: {}\n"
        "ingest:\n  parse_workers: 1\n"
    )
    return storage


def capture_app_logs(caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """Capture every record as the appliance's logging has them (the libraries whose per-request INFO lines print a
    URL as given at WARNING); returns what reads the captured messages."""
    for name in QUIET_LOGGERS:
        caplog.set_level(logging.WARNING, logger=name)
    # the last call sets the capturing handler's level
    caplog.set_level(logging.DEBUG)
    return lambda: "\n".join(record.getMessage() for record in caplog.records)


async def load_text(client: TestClientProtocol, source_id: str, text: str) -> None:
    """PUT one text source through /loadSources, which must take it."""
    response = await put_sources(client, [SourcePart(source_id, text.encode())])
    assert (await response.get_json())["loaded_sources"] == [source_id]


async def status_report(client: TestClientProtocol) -> dict[str, Any]:
    report: dict[str, Any] = await (await client.get("/status", headers=signed_headers())).get_json()
    return report


def all_embedded(report: dict[str, Any]) -> bool:
    """Whether a /status report has no chunk left in the queue."""
    return bool(report["chunks"]["queued"] == 0)


async def status_when(
    client: TestClientProtocol, reached: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """GET /status until `reached(report)`; that report."""
    report: dict[str, Any] = {}

    async def check() -> bool:
        nonlocal report
        report = await status_report(client)
        return reached(report)

    await wait_until(check, what)
    return report


def embedder_paused_after(failed_calls: int) -> Callable[[dict[str, Any]], bool]:
    """Whether a /status report shows embedding paused on the embedding service after `failed_calls` calls."""

    def paused(report: dict[str, Any]) -> bool:
        embedder = report["embedder"]
        return bool(embedder["state"] == "unavailable" and embedder["failed_calls"] >= failed_calls)

    return paused
