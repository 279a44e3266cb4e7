"""A route's 500 "Vector DB Error: ..." names the request, PostgreSQL's error class, SQLSTATE and schema objects, and
what to do; never PostgreSQL's own text, whose DETAIL quotes the row it refused (here a chunk's sentence, copied by an
audit trigger an admin added to the database into a table whose CHECK it breaks)."""

from __future__ import annotations

import logging

import psycopg
import pytest
from contract_kit import SourcePart, enable_and_load, signed_headers
from quart.typing import TestClientProtocol as Client
from secret_documents import SECRET, quoted_secret

from quart_app import http_errors

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
