"""With EXTERNAL_DB and CC_EM_BASE_URL, nothing reaches the local PostgreSQL socket or the local embedder's port.

Listeners sit where the embedded PostgreSQL (storage/run/pg socket) and the local embedder (embedding.port) would
be; the app is built from the environment as in production, indexes a document and answers a search, and neither
listener has a connection waiting. The embedding model it binds is the external service's, not the catalogue's.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from async_wait import wait_until
from contract_kit import SourcePart, enable_and_load, external_services_env, free_port, running_app, signed_headers
from embedding_service_fake import EmbeddingServiceFake

from appliance.storage import StorageLayout
from quart_app import create_app
from quart_app.app_settings import AppSettings


@contextmanager
def listener(family: socket.AddressFamily, address: str | tuple[str, int]) -> Iterator[socket.socket]:
    """A listening socket nobody accepts on; a connection attempt would wait in its backlog."""
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind(address)
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def assert_never_connected(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        sock.accept()


async def test_external_db_and_embedder_leave_the_local_socket_and_port_alone(tmp_path: Path, fresh_dsn: str) -> None:
    storage = StorageLayout(tmp_path / "storage")
    storage.ensure()
    local_port = free_port()
    (storage.root / "config.yaml").write_text(
        "embedding:\n"
        f"  base_url: http://127.0.0.1:{local_port}/v1\n"
        f"  port: {local_port}\n"
        "  workers: 1\n"
        "  chunk_tokens: 96\n"
        "embedding_worker:\n  idle_poll_s: 0.2\n"
        "llm:\n  extractive: {}\n"
        "ingest:\n  parse_workers: 1\n"
    )
    storage.pg_socket_dir.mkdir(parents=True, exist_ok=True)
    with (
        EmbeddingServiceFake(model="external-embed", dimension=8) as fake,
        listener(socket.AF_INET, ("127.0.0.1", local_port)) as embedder_port,
        listener(socket.AF_UNIX, str(storage.pg_socket_dir / ".s.PGSQL.5432")) as postgres_socket,
    ):
        environ = external_services_env(storage.root, fresh_dsn, fake.url)
        settings = AppSettings.from_env(environ)
        assert settings.config.embedding.workers == 0
        async with running_app(create_app(settings)) as test_app:
            client = test_app.test_client()
            await enable_and_load(client, SourcePart("files__default: 1", b"Open data for green labels."))

            async def embedded() -> bool:
                report = await (await client.get("/status", headers=signed_headers())).get_json()
                return bool(report["chunks"]["queued"] == 0 and report["chunks"]["embedded"] > 0)

            await wait_until(embedded, "the chunks to be embedded by the external service")
            status = await (await client.get("/status", headers=signed_headers())).get_json()
            found = await client.post(
                "/docSearch", json={"userId": "admin", "query": "green labels", "ctxLimit": 3}, headers=signed_headers()
            )
            assert found.status_code == 200, await found.get_data(as_text=True)
            hits = await found.get_json()
        assert [hit["source_id"] for hit in hits] == ["files__default: 1"]
        assert status["embedding_model"] == {"id": "external-embed", "dimension": 8}
        assert fake.inputs_per_request, "the external service was never asked"
        assert_never_connected(embedder_port)
        assert_never_connected(postgres_socket)
