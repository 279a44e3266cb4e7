"""A route's 500 "Vector DB Error: ..." names the request, PostgreSQL's error class, SQLSTATE and schema objects, and
what to do; never PostgreSQL's own text, whose DETAIL quotes the row it refused (here a chunk's sentence, copied by an
audit trigger an admin added to the database into a table whose CHECK it breaks)."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest
from contract_kit import SourcePart, contract_config, enable_and_load, make_settings, running_app, signed_headers
from quart.typing import TestClientProtocol as Client
from secret_documents import SECRET, quoted_secret

from quart_app import create_app, http_errors

AUDIT_TRIGGER = """
CREATE TABLE chunk_audit (text text CONSTRAINT no_mergers CHECK (text NOT LIKE '%merger%'));
CREATE FUNCTION audit_chunk() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chunk_audit VALUES (OLD.text);
    RETURN OLD;
END $$;
CREATE TRIGGER audit_chunk AFTER DELETE ON chunks FOR EACH ROW EXECUTE FUNCTION audit_chunk();
"""


async def test_a_database_error_quoting_a_row_is_answered_and_logged_without_it(
    client: Client, fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await enable_and_load(client, SourcePart("files__default: 5", SECRET.encode()))
    async with await psycopg.AsyncConnection.connect(fresh_dsn, autocommit=True) as conn:
        await conn.execute(AUDIT_TRIGGER.encode())
    response = await client.post("/deleteSources", json={"sourceIds": ["files__default: 5"]}, headers=signed_headers())
    assert (response.status_code, await response.get_json()) == (
        500,
        {
            "error": "Vector DB Error: POST /deleteSources failed in the database: CheckViolation (SQLSTATE 23514,"
            " integrity constraint violation; table chunk_audit, constraint no_mergers); a constraint or trigger the"
            " app did not create must allow its rows; else report it with the app log's line"
        },
    )
    [logged] = [r for r in caplog.records if r.name == http_errors.__name__ and r.levelno >= logging.ERROR]
    assert logged.getMessage().startswith(
        "POST /deleteSources failed in the database: CheckViolation (SQLSTATE 23514, integrity constraint violation;"
        ' table chunk_audit, constraint no_mergers): new row for relation "chunk_audit" violates check constraint'
        ' "no_mergers", at quart_app/store/'
    ), logged.getMessage()
    # caplog.text holds every record's traceback too
    assert quoted_secret(caplog.text + await response.get_data(as_text=True)) == []


# an admin's audit whose dynamic SQL carries a chunk's text: PostgreSQL's CONTEXT line quotes that statement when it
# is cancelled. A delete's trigger waits for chunk_audit, which another session holds (lock timeout; deletes lift the
# statement timeout); a row security policy on what a question reads sleeps (statement timeout)
AUDIT = """
CREATE TABLE chunk_audit (note text);
CREATE FUNCTION audited(note text, sleep_s float) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT pg_sleep(%s), count(*) FROM chunk_audit WHERE note = %L', sleep_s, note);
    RETURN true;
END $$;
"""
AUDIT_DELETES = """
CREATE FUNCTION audit_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM audited(OLD.text, 0);
    RETURN OLD;
END $$;
CREATE TRIGGER audit_delete BEFORE DELETE ON chunks FOR EACH ROW EXECUTE FUNCTION audit_delete();
"""
AUDIT_READS = """
CREATE POLICY audit_reads ON chunks USING (audited(text, 60));
ALTER TABLE chunks ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
"""
DELETE = ("/deleteSources", {"sourceIds": ["files__default: 5"]}, "")
QUESTION = ("/query", {"userId": "admin", "query": "Is the merger with Acme off?"}, "admin")
TIMEOUTS = {
    # setting, the audit, the request, the answer's start
    "lock": ({"lock_timeout_s": 1}, AUDIT_DELETES, DELETE, "a database statement waited longer than"),
    "statement": ({"statement_timeout_s": 2}, AUDIT_READS, QUESTION, "a database statement ran longer than"),
}


@pytest.mark.parametrize("cancelled_by", sorted(TIMEOUTS))
async def test_a_timed_out_statement_quoting_a_row_is_logged_without_it(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, caplog: pytest.LogCaptureFixture, cancelled_by: str
) -> None:
    setting, audit, (path, body, user), answer = TIMEOUTS[cancelled_by]
    caplog.set_level(logging.INFO)
    raw = contract_config(embedder_url, pgvector={"pool_max": 4, **setting})
    async with running_app(create_app(make_settings(tmp_path / "storage", fresh_dsn, raw))) as test_app:
        client = test_app.test_client()
        await enable_and_load(client, SourcePart("files__default: 5", SECRET.encode()))
        async with await psycopg.AsyncConnection.connect(fresh_dsn) as holder:
            await holder.execute((AUDIT + audit).encode())
            await holder.commit()
            await holder.execute("LOCK TABLE chunk_audit IN ACCESS EXCLUSIVE MODE")
            response = await client.post(path, json=body, headers=signed_headers(user))
    error = (await response.get_json())["error"]
    assert response.status_code == 500 and error.startswith(f"Vector DB Error: {answer}"), error
    # caplog.text holds every record's traceback too
    assert quoted_secret(caplog.text + error) == []
    [logged] = [r for r in caplog.records if r.name == http_errors.__name__ and r.levelno >= logging.ERROR]
    # our message, then the condition and where the statement ran: PostgreSQL's first line is a fixed sentence
    assert logged.getMessage().startswith(f"POST {path} failed: "), logged.getMessage()
    assert "QueryCanceled (SQLSTATE 57014" in logged.getMessage() or cancelled_by == "lock", logged.getMessage()
