"""The whole contract against the real server: hypercorn serving "quart_app:create_app()" as a subprocess, with the
real database and the real embedder, driven over HTTP exactly as AppAPI and the PHP app do."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from contract_kit import (
    APP_ID,
    APP_SECRET,
    APP_VERSION,
    ServerProcess,
    SourcePart,
    free_port,
    guzzle_multipart,
    signed_headers,
)

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

DOCS = {
    "files__default: 1": (b"The Ethical AI Rating: a green label means open model, data and code.", ["alice", "bob"]),
    "files__default: 2": (b"Budget 2025: the Berlin office travel budget is 12000 euros.", ["alice"]),
    "files__default: 3": (b"Holiday plan: hiking in the Alps in July, sleeping in a tent.", ["bob", "carol"]),
    "notes__meeting: 9": (b"Meeting notes: the green label review happens every Friday.", ["alice", "carol"]),
}


@pytest.fixture
def live_server(tmp_path: Path, fresh_dsn: str, embedder_url: str) -> Iterator[tuple[str, ServerProcess]]:
    storage = tmp_path / "storage"
    storage.mkdir()
    config = {
        "embedding": {"base_url": embedder_url, "workers": 1, "chunk_tokens": 96},
        "embedding_worker": {"idle_poll_s": 0.2},
        "llm": {"extractive": {}},
        "ingest": {"parse_workers": 1},
        # DEBUG: the secret check below then covers every line the app can write
        "log_level": "DEBUG",
    }
    (storage / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    env = {
        **os.environ,
        "APP_ID": APP_ID,
        "APP_SECRET": APP_SECRET,
        "APP_VERSION": APP_VERSION,
        "APP_PERSISTENT_STORAGE": str(storage),
        # upstream's SQLAlchemy-style URL, as AppAPI passes EXTERNAL_DB
        "EXTERNAL_DB": fresh_dsn.replace("postgresql://", "postgresql+psycopg://", 1),
    }
    # --workers 0: serve in this process (a daemonic hypercorn worker could not start the parser processes)
    command = [sys.executable, "-m", "hypercorn", "--workers", "0", "--bind", f"127.0.0.1:{port}"]
    command.append("quart_app:create_app()")
    server = ServerProcess(command, tmp_path / "server.log", env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    server.start(lambda: httpx.get(f"{base}/heartbeat", timeout=2).status_code == 200, timeout_s=120)
    yield base, server
    server.stop()


def run_php_app_flow(base: str, secret: str = APP_SECRET) -> None:
    """What a fresh appliance must do for AppAPI and the PHP app, over HTTP only (no knowledge of our code)."""
    with httpx.Client(base_url=base, timeout=120) as http:

        def call(method: str, path: str, body: Any = None, user: str = "") -> tuple[int, Any]:
            response = http.request(method, path, json=body, headers=signed_headers(user, secret=secret))
            return response.status_code, response.json()

        def sources(user: str, query: str, **extra: Any) -> set[str]:
            status, answer = call("POST", "/query", {"userId": user, "query": query, **extra}, user)
            if status == 400:
                assert answer["error"].startswith("Context Retrieval Error: "), answer
                return set()
            assert status == 200, answer
            return set(answer["sources"])

        def count() -> Any:
            return call("POST", "/countIndexedDocuments")[1]

        # AppAPI: heartbeat (unsigned), then enable
        assert http.get("/heartbeat").json() == {"status": "ok"}
        assert call("GET", "/enabled") == (200, {"enabled": False})
        assert call("POST", "/query", {"userId": "alice", "query": "q"}) == (
            503,
            {"error": "Context Chat is disabled, enable it from AppAPI to use it."},
        )
        assert call("PUT", "/enabled?enabled=1") == (200, {"error": ""})
        assert call("GET", "/", user="alice") == (200, "Hello, alice!")

        # unsigned and wrongly signed requests
        refused = {"error": "Invalid signature of the request"}
        assert (http.get("/").status_code, http.get("/").json()) == (401, refused)
        wrong = http.post("/query", json={"userId": "a", "query": "q"}, headers=signed_headers(secret="nope-123"))
        assert (wrong.status_code, wrong.json()) == (401, refused)
        wrong_app = http.post("/countIndexedDocuments", headers=signed_headers(secret=secret, app_id="another_app"))
        assert wrong_app.status_code == 401

        # index for several users, shared files
        parts = [
            SourcePart(sid, text, user_ids=users, title=f"Documents/{sid[-1]}.txt", provider=sid.split(":")[0])
            for sid, (text, users) in DOCS.items()
        ]
        body, content_type = guzzle_multipart(parts)
        headers = {**signed_headers(secret=secret), "Content-Type": content_type}
        response = http.put("/loadSources", content=body, headers=headers)
        assert response.status_code == 200
        assert sorted(response.json()["loaded_sources"]) == sorted(DOCS)
        assert response.json()["sources_to_retry"] == []
        assert count() == {"files__default": 3, "notes__meeting": 1}

        # queries with and without scopes
        assert "files__default: 2" in sources("alice", "Berlin office travel budget")
        assert "files__default: 2" not in sources("bob", "Berlin office travel budget")
        assert sources("carol", "green label", scopeType="source", scopeList=["notes__meeting: 9"]) == {
            "notes__meeting: 9"
        }
        assert sources("alice", "green label", scopeType="provider", scopeList=["notes__meeting"]) == {
            "notes__meeting: 9"
        }
        status, hits = call("POST", "/docSearch", {"userId": "bob", "query": "hiking tent Alps", "ctxLimit": 3}, "bob")
        assert status == 200 and "files__default: 3" in {h["source_id"] for h in hits}

        # revoke access
        ok = (200, {"message": "Access updated"})
        assert call("POST", "/updateAccess", {"op": "deny", "userIds": ["bob"], "sourceId": "files__default: 1"}) == ok
        assert "files__default: 1" not in sources("bob", "Ethical AI Rating green label")
        assert "files__default: 1" in sources("alice", "Ethical AI Rating green label")

        # deletes by source, provider and user
        deleted = (200, {"message": "All valid sources deleted"})
        assert call("POST", "/deleteSources", {"sourceIds": ["files__default: 2"]}) == deleted
        assert count() == {"files__default": 2, "notes__meeting": 1}
        assert call("POST", "/deleteProvider", {"providerKey": "notes__meeting"}) == deleted
        assert count() == {"files__default": 2}
        assert call("POST", "/deleteUser", {"userId": "carol"}) == (200, {"message": "User deleted"})
        assert "files__default: 3" in sources("bob", "hiking tent Alps")
        assert call("POST", "/deleteUser", {"userId": "bob"}) == (200, {"message": "User deleted"})
        assert count() == {"files__default": 1}
        assert call("GET", "/status")[1]["documents"]["indexed"] == 1


def test_the_php_apps_flow_against_the_running_server(live_server: tuple[str, ServerProcess]) -> None:
    base, server = live_server
    run_php_app_flow(base)
    server.stop()
    log = server.log_text()
    assert "refused POST /query" in log and "refused GET /" in log
    assert APP_SECRET not in log and "nope-123" not in log


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[tuple[str, str, Path, ServerProcess | None]]:
    """The whole appliance as `make run` starts it (entrypoint.sh -> supervisord -> postgres, embedder, app) with the
    shipped CPU config, or an already running one named by CCB_CONTRACT_URL / CCB_CONTRACT_SECRET /
    CCB_CONTRACT_LOG_DIR (a fresh storage dir)."""
    if os.environ.get("CCB_CONTRACT_URL"):
        secret = os.environ.get("CCB_CONTRACT_SECRET", APP_SECRET)
        yield os.environ["CCB_CONTRACT_URL"], secret, Path(os.environ.get("CCB_CONTRACT_LOG_DIR", tmp_path)), None
        return
    storage = tmp_path / "storage"
    storage.mkdir()
    embedder_port = free_port()
    config = (REPO / "configs" / "config.cpu.yaml").read_text()
    config = config.replace("http://127.0.0.1:5000/v1", f"http://127.0.0.1:{embedder_port}/v1")
    (storage / "config.yaml").write_text(config.replace("  port: 5000\n", f"  port: {embedder_port}\n"))
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("NEXTCLOUD_", "EXTERNAL_DB"))}
    env.update(APP_ID=APP_ID, APP_SECRET=APP_SECRET, APP_VERSION=APP_VERSION, APP_PORT=str(port))
    env["APP_PERSISTENT_STORAGE"] = str(storage)
    server = ServerProcess([str(REPO / "entrypoint.sh")], tmp_path / "entrypoint.log", env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    server.start(lambda: httpx.get(f"{base}/heartbeat", timeout=2).status_code == 200, timeout_s=180)
    yield base, APP_SECRET, storage / "logs", server
    server.stop(timeout_s=60)


def test_the_php_apps_flow_against_the_whole_appliance(
    appliance: tuple[str, str, Path, ServerProcess | None],
) -> None:
    """The shipped config's first LLM is nc_texttotext; with no Nextcloud here answers are quoted passages."""
    base, secret, log_dir, server = appliance
    run_php_app_flow(base, secret)
    if server is not None:
        server.stop(timeout_s=60)
        assert server.process is not None and server.process.returncode == 0, server.log_text()[-3000:]
        assert "stopped: postgres (exit status 0)" in server.log_text()
    logs = [path for path in log_dir.rglob("*.log") if path.is_file()]
    assert server is None or {path.name for path in logs} >= {"app.log", "postgres.log", "embedder.log"}
    for path in logs:
        assert secret not in path.read_text(errors="replace"), path
