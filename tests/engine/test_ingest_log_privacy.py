"""A document the database refuses to store is retried, and the log line says why without the row PostgreSQL quotes
in its DETAIL ("Failing row contains (...)": the chunk's text) or the chunk's text an admin's trigger put in its
message."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from engine_kit import write_source
from secret_documents import SECRET, quoted_secret

from quart_app.services import ingest as ingest_module
from quart_app.services.ingest import IngestService
from quart_app.store import Database

WITHHELD = "PostgreSQL's message withheld: it may quote a value"
# a constraint this document's chunk breaks
CHECK_CONSTRAINT = "ALTER TABLE chunks ADD CONSTRAINT no_mergers CHECK (text NOT LIKE '%merger%')"
# a trigger an admin added that refuses a chunk and says why with its text: a plain RAISE (SQLSTATE P0001) and one
# naming an ordinary SQLSTATE (USING ERRCODE), whose message is just as much the trigger's own text
REFUSING_TRIGGER = """
CREATE FUNCTION refuse_mergers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.text LIKE '%merger%' THEN
        RAISE EXCEPTION 'chunk refused: %', NEW.text {using};
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_mergers BEFORE INSERT ON chunks FOR EACH ROW EXECUTE FUNCTION refuse_mergers();
"""
# an admin's audit trigger that reads a chunk's text as SQL: PostgreSQL's error quotes it. A statement its EXECUTE built
# is quoted by its syntax error (a word, "Bob", or for a string left open the whole rest) and by its name of a column
# it does not know; a tsquery's syntax error quotes the whole query
AUDIT_TRIGGER = """
CREATE FUNCTION audit_chunk() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {statement};
    RETURN NEW;
END $$;
CREATE TRIGGER audit_chunk BEFORE INSERT ON chunks FOR EACH ROW EXECUTE FUNCTION audit_chunk();
"""
# fault injection on the real PostgreSQL: what makes it refuse the chunk, and the reason the log line gives. Before,
# the SQL built from a chunk was logged as 'syntax error at or near "Bob"', 'unterminated quoted string at or near
# "'Dear Bob, the merger ...', 'column "Dear Bob" does not exist', 'syntax error in tsquery: "Dear Bob, the merger ..."'
REFUSALS = {
    "check constraint": (
        CHECK_CONSTRAINT,
        'CheckViolation: new row for relation "chunks" violates check constraint "no_mergers"',
    ),
    "trigger: raise": (
        REFUSING_TRIGGER.format(using=""),
        f"RaiseException: SQLSTATE P0001, PL/pgSQL raise exception; {WITHHELD}",
    ),
    "trigger: raise with errcode": (
        REFUSING_TRIGGER.format(using="USING ERRCODE = 'check_violation'"),
        f"CheckViolation: SQLSTATE 23514, integrity constraint violation; {WITHHELD}",
    ),
    "sql from a chunk: execute: token": (
        AUDIT_TRIGGER.format(statement="EXECUTE 'SELECT 1 ' || NEW.text"),
        f"SyntaxError: SQLSTATE 42601, syntax error or access rule violation; {WITHHELD}",
    ),
    "sql from a chunk: execute: unterminated string": (
        AUDIT_TRIGGER.format(statement="EXECUTE 'SELECT ''' || NEW.text"),
        f"SyntaxError: SQLSTATE 42601, syntax error or access rule violation; {WITHHELD}",
    ),
    "sql from a chunk: execute: identifier": (
        AUDIT_TRIGGER.format(statement="EXECUTE format('SELECT %I', split_part(NEW.text, ',', 1))"),
        f"UndefinedColumn: SQLSTATE 42703, syntax error or access rule violation; {WITHHELD}",
    ),
    "sql from a chunk: tsquery": (
        AUDIT_TRIGGER.format(statement="PERFORM to_tsquery('simple', NEW.text)"),
        "SyntaxError: syntax error in tsquery: (the text it quotes withheld: it may be a value)",
    ),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
async def test_a_chunk_the_database_refuses_is_retried_and_logged_without_its_text(
    ingest: IngestService, db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture, refusal: str
) -> None:
    caplog.set_level(logging.INFO)
    setup, reason = REFUSALS[refusal]
    async with db.connection() as conn:
        await conn.execute(setup.encode())
    report = await ingest.ingest([write_source(tmp_path, "files__default: 7", SECRET, ["alice"])])
    assert report.retry == ["files__default: 7"]
    lines = [r.getMessage() for r in caplog.records if r.name == ingest_module.__name__ and r.levelno >= 30]
    assert lines == [f"ingest: source files__default: 7 to retry after {reason}"]
    # the captured text holds every message, and any traceback logged with one
    assert quoted_secret(caplog.text) == []
