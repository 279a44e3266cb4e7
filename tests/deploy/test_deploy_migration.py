"""deploy/README.md's way out of the appliance: its dump block run in a populated appliance (the whole thing, as
`make run` starts it), its restore block into a second, fresh PostgreSQL prepared as a managed one would be (the
extension made by the administrator, the restore done by the app's unprivileged role), then the app on the restored
database answers a search exactly as the appliance did."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from appliance_stack import ApplianceStack, shipped_config
from compose_file import DEPLOY
from contract_kit import SourcePart, guzzle_multipart, make_settings, running_app, signed_headers
from local_ports import free_port
from restartable_postgres import RestartablePostgres
from waiting import wait_for

from appliance.postgres import pg_bin_dir
from quart_app import create_app
from quart_app.app_settings import AppSettings

pytestmark = pytest.mark.slow
README = DEPLOY / "README.md"
DOCUMENTS = [
    SourcePart("files__default: 1", b"The travel budget of the Berlin office is 12000 euros.", ("alice",)),
    SourcePart("files__default: 2", b"A green label needs open model weights, data and code.", ("alice", "bob")),
    SourcePart("files__default: 3", b"Budget review for the Munich office: travel is frozen.", ("alice",)),
    SourcePart("files__default: 4", b"Bob plans a hiking holiday in the Alps in July.", ("bob",)),
]
SEARCHES = [("alice", "travel budget office"), ("bob", "green label open data"), ("alice", "holiday in the Alps")]
# what a vector-bearing table holds, compared row by row between the two databases
CONTENT_SQL = (
    "SELECT source_id, version, ordinal, text, embedding::text FROM chunks ORDER BY source_id, version, ordinal",
    "SELECT user_id, source_id FROM access ORDER BY user_id, source_id",
    "SELECT model_id, dimension FROM embedding_model",
)


def readme_block(name: str) -> str:
    """The shell block after `<!-- name -->` in deploy/README.md."""
    match = re.search(rf"<!-- {name} -->\n```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert match is not None, f"deploy/README.md has no ```sh block after <!-- {name} -->"
    return match.group(1)


def run_block(name: str, env: dict[str, str], cwd: Path, path: tuple[Path, ...] = ()) -> None:
    """Run it as an operator would in a shell (stopping at the first failing command), `path` first on PATH and
    then the venv's bin (the image's /opt/venv/bin)."""
    shell_env = {**env, "PATH": os.pathsep.join([*map(str, path), str(Path(sys.executable).parent), env["PATH"]])}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_block(name)],
        env=shell_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"the {name} block failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture
def appliance() -> Iterator[ApplianceStack]:
    """The whole appliance on a short private directory outside pytest's basetemp (see tests/appliance/conftest.py:
    private_dir), with the shipped CPU config."""
    root = Path(tempfile.mkdtemp(prefix="ccb-mig-", dir="/tmp"))
    stack = ApplianceStack(root, shipped_config(free_port()))
    try:
        stack.wait_healthy()
        stack.enable()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_readme_moves_a_populated_appliance_database_to_another_postgresql(
    appliance: ApplianceStack, restartable_pg: RestartablePostgres, tmp_path: Path
) -> None:
    body, content_type = guzzle_multipart(DOCUMENTS)
    headers = {**signed_headers(), "Content-Type": content_type}
    response = httpx.put(f"{appliance.base_url}/loadSources", content=body, headers=headers, timeout=120)
    assert response.json()["loaded_sources"] == [part.source_id for part in DOCUMENTS]
    wait_for(lambda: _queued(appliance.base_url) == 0, 180, "every chunk embedded")
    before = [_search(appliance.base_url, user, query) for user, query in SEARCHES]
    assert all(before), before

    dump_dir = tmp_path / "dump"
    dump_dir.mkdir()
    run_block("dump", appliance.env, dump_dir)
    assert appliance.status()["app"][0] == "STOPPED"  # nothing writes after the dump
    # the target: a fresh database owned by the app's role, the extension made by the administrator
    # pg_restore of the embedded version, as the db image has it (this machine's own may be older)
    run_block("restore", {**appliance.env, "EXTERNAL_DB": restartable_pg.test_dsn}, dump_dir, (pg_bin_dir(),))
    for sql in CONTENT_SQL:
        assert _rows(restartable_pg.test_dsn, sql) == _rows(appliance.cluster.dsn, sql), sql

    # the app on the restored database, with the appliance's config and its embedder (still running)
    raw = yaml.safe_load(appliance.storage.config_file.read_text(encoding="utf-8"))
    raw["embedding"]["workers"] = 0
    settings = make_settings(tmp_path / "storage", restartable_pg.test_dsn, raw)
    after = asyncio.run(_search_restored(settings))
    assert after == before


async def _search_restored(settings: AppSettings) -> list[list[dict[str, Any]]]:
    """SEARCHES through the app on `settings`' database, enabled as AppAPI enables it."""
    app = create_app(settings)
    found = []
    async with running_app(app):
        client = app.test_client()
        assert (await client.put("/enabled?enabled=1", headers=signed_headers())).status_code == 200
        for user, query in SEARCHES:
            response = await client.post("/docSearch", json=_search_body(user, query), headers=signed_headers(user))
            assert response.status_code == 200
            found.append(await response.get_json())
    return found


def _search_body(user: str, query: str) -> dict[str, Any]:
    return {"userId": user, "query": query, "ctxLimit": 10}


def _search(base: str, user: str, query: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{base}/docSearch", json=_search_body(user, query), headers=signed_headers(user), timeout=60)
    assert response.status_code == 200, response.text
    hits: list[dict[str, Any]] = response.json()
    return hits


def _queued(base: str) -> int:
    response = httpx.get(f"{base}/status", headers=signed_headers(), timeout=30)
    queued: int = response.json()["chunks"]["queued"]
    return queued


def _rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        return list(conn.execute(sql.encode()).fetchall())


def test_the_readme_blocks_use_the_embedded_binaries() -> None:
    """pg_dump and pg_restore of the embedded server's version exist where the dump block looks for them."""
    assert (pg_bin_dir() / "pg_dump").is_file() and (pg_bin_dir() / "pg_restore").is_file()
    assert "pg_bin_dir()" in readme_block("dump")
