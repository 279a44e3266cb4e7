"""Real faults mapped to upstream 4.0.6+ shapes: a broken database -> 500 'Vector DB Error: ...', a failed
Nextcloud text-to-text task -> 500 'LLM Error: ...'."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest
from contract_kit import (
    APP_ID,
    APP_SECRET,
    APP_VERSION,
    SourcePart,
    contract_config,
    make_settings,
    put_sources,
    running_app,
    signed_headers,
)
from nextcloud_ocs_fake import FakeAppApiNextcloud
from quart.typing import TestClientProtocol as Client

from appliance.postgres import EmbeddedPostgres
from quart_app import create_app, http_errors


async def test_a_database_fault_is_a_vector_db_error(
    client: Client, fresh_dsn: str, pg_cluster: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await client.post("/countIndexedDocuments", headers=signed_headers())).status_code == 200
    database = fresh_dsn.split("@/", 1)[1].split("?")[0]
    superuser = f"postgresql://postgres@/{database}?host={pg_cluster.socket_dir}"
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute("ALTER TABLE documents RENAME TO documents_gone")
    with caplog.at_level(logging.ERROR, logger=http_errors.__name__):
        response = await client.post("/countIndexedDocuments", headers=signed_headers())
    body = await response.get_json()
    assert (response.status_code, body) == (
        500,
        {
            "error": "Vector DB Error: POST /countIndexedDocuments failed in the database: UndefinedTable (SQLSTATE"
            " 42P01, syntax error or access rule violation); the schema or the database user's privileges are not"
            " what this version needs: restart the app so it migrates the schema, and let its database user own the"
            " app's tables"
        },
    )
    # the log names the relation: PostgreSQL's first line, as a class-42 message names schema objects, not values
    assert 'relation "documents" does not exist' in caplog.messages[-1]


async def test_a_query_waiting_for_a_lock_is_a_vector_db_error_naming_the_setting(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    raw = contract_config(embedder_url, pgvector={"pool_max": 4, "lock_timeout_s": 0.5})
    app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))
    async with running_app(app) as test_app:
        http = test_app.test_client()
        await http.put("/enabled?enabled=1", headers=signed_headers())
        async with await psycopg.AsyncConnection.connect(fresh_dsn) as holder:
            # what a change of embedding model holds while it rebuilds the vector index
            await holder.execute("LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE")
            question = {"userId": "admin", "query": "What do green labels need?"}
            response = await http.post("/query", json=question, headers=signed_headers("admin"))
            answer = await response.get_json()
    assert response.status_code == 500
    assert answer["error"].startswith(
        "Vector DB Error: a database statement waited longer than pgvector.lock_timeout_s (0.5 s) for a lock"
    )


async def test_a_failed_llm_task_is_an_llm_error(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeAppApiNextcloud() as nextcloud:
        for name, value in {"NEXTCLOUD_URL": nextcloud.url, "APP_ID": APP_ID, "APP_SECRET": APP_SECRET}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("APP_VERSION", APP_VERSION)
        nextcloud.task.statuses = ["STATUS_FAILED"]
        raw = contract_config(embedder_url, llm={"nc_texttotext": {"poll_interval_s": 0.05}})
        app = create_app(make_settings(tmp_path / "storage", fresh_dsn, raw, nextcloud.url))
        async with running_app(app) as test_app:
            http = test_app.test_client()
            await http.put("/enabled?enabled=1", headers=signed_headers())
            await put_sources(http, [SourcePart("files__default: 1", b"Green labels need open data.")])
            question = {"userId": "admin", "query": "What do green labels need?"}
            response = await http.post("/query", json=question, headers=signed_headers("admin"))
            answer = await response.get_json()
    assert response.status_code == 500 and answer["error"].startswith("LLM Error: ")


# PostgreSQL itself fails the first `failures` deletes of the user's access rows as a deadlock victim (SQLSTATE
# 40P01); the sequence counts the attempts (nextval survives the rollback)
INJECTED_DEADLOCK = """
CREATE SEQUENCE conflict_attempts;
CREATE FUNCTION injected_deadlock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('conflict_attempts') <= {failures} THEN
        RAISE EXCEPTION 'deadlock detected (injected)' USING ERRCODE = 'deadlock_detected';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER injected_deadlock BEFORE DELETE ON access
    FOR EACH ROW WHEN (OLD.user_id = 'conflicted') EXECUTE FUNCTION injected_deadlock();
INSERT INTO documents (source_id, provider, mimetype, modified, content_hash, size, state)
    VALUES ('files__default: 1', 'files__default', 'text/plain', 1, '\\x00', 1, 'indexed');
INSERT INTO access (user_id, source_id) VALUES ('conflicted', 'files__default: 1'), ('alice', 'files__default: 1');
"""


async def _delete_user_with_deadlocks(client: Client, dsn: str, failures: int) -> tuple[int, dict[str, str], Any, int]:
    """POST /deleteUser while its first `failures` attempts deadlock: status, headers, body, attempts; readers left."""
    assert (await client.post("/countIndexedDocuments", headers=signed_headers())).status_code == 200
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(INJECTED_DEADLOCK.format(failures=failures).encode())
        response = await client.post("/deleteUser", json={"userId": "conflicted"}, headers=signed_headers())
        attempts = await (await conn.execute("SELECT last_value FROM conflict_attempts")).fetchone()
    assert attempts is not None
    return response.status_code, dict(response.headers), await response.get_json(), attempts[0]


async def test_a_delete_that_keeps_deadlocking_is_a_503_with_cc_retry(client: Client, fresh_dsn: str) -> None:
    status, headers, body, attempts = await _delete_user_with_deadlocks(client, fresh_dsn, failures=100)
    assert status == 503 and headers["cc-retry"] == "true"
    assert body == {
        # the injected deadlock is a RAISE: its message is the trigger's own text, withheld like any RAISE's
        "error": "Vector DB Error: deleting a user conflicted with concurrent transactions 4 times (SQLSTATE 40P01,"
        " transaction rollback; PostgreSQL's message withheld: it may quote a value); retry later"
    }
    assert attempts == 4  # CONFLICT_ATTEMPTS, each rolled back: the user still reads the document
    async with await psycopg.AsyncConnection.connect(fresh_dsn) as conn:
        readers = await (await conn.execute("SELECT user_id FROM access ORDER BY user_id")).fetchall()
    assert readers == [("alice",), ("conflicted",)]


async def test_a_delete_chosen_as_deadlock_victim_twice_succeeds_on_its_third_attempt(
    client: Client, fresh_dsn: str
) -> None:
    status, _headers, _body, attempts = await _delete_user_with_deadlocks(client, fresh_dsn, failures=2)
    assert status == 200 and attempts == 3
    async with await psycopg.AsyncConnection.connect(fresh_dsn) as conn:
        readers = await (await conn.execute("SELECT user_id FROM access ORDER BY user_id")).fetchall()
    assert readers == [("alice",)]
