"""A document the database refuses to store is retried, and the log line says why without the row PostgreSQL quotes
in its DETAIL ("Failing row contains (...)": the chunk's text)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from engine_kit import write_source
from secret_documents import SECRET, quoted_secret

from quart_app.services import ingest as ingest_module
from quart_app.services.ingest import IngestService
from quart_app.store import Database


async def test_a_refused_chunk_row_is_retried_and_logged_without_its_text(
    ingest: IngestService, db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # fault injection on the real PostgreSQL: a constraint this document's chunk breaks
    async with db.connection() as conn:
        await conn.execute("ALTER TABLE chunks ADD CONSTRAINT no_mergers CHECK (text NOT LIKE '%merger%')")
    report = await ingest.ingest([write_source(tmp_path, "files__default: 7", SECRET, ["alice"])])
    assert report.retry == ["files__default: 7"]
    lines = [r.getMessage() for r in caplog.records if r.name == ingest_module.__name__ and r.levelno >= 30]
    assert lines == [
        'ingest: source files__default: 7 to retry after CheckViolation: new row for relation "chunks" violates'
        ' check constraint "no_mergers"'
    ]
    assert quoted_secret("\n".join(r.getMessage() for r in caplog.records)) == []


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
RAISED = {
    "raise": ("", "RaiseException: SQLSTATE P0001, PL/pgSQL raise exception"),
    "raise with errcode": (
        "USING ERRCODE = 'check_violation'",
        "CheckViolation: SQLSTATE 23514, integrity constraint violation",
    ),
}


@pytest.mark.parametrize("raised", sorted(RAISED))
async def test_a_chunk_refused_by_a_trigger_quoting_it_is_retried_and_logged_without_its_text(
    ingest: IngestService, db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture, raised: str
) -> None:
    caplog.set_level(logging.INFO)
    using, condition = RAISED[raised]
    async with db.connection() as conn:
        await conn.execute(REFUSING_TRIGGER.format(using=using).encode())
    report = await ingest.ingest([write_source(tmp_path, "files__default: 7", SECRET, ["alice"])])
    assert report.retry == ["files__default: 7"]
    lines = [r.getMessage() for r in caplog.records if r.name == ingest_module.__name__ and r.levelno >= 30]
    assert lines == [
        f"ingest: source files__default: 7 to retry after {condition}; PostgreSQL's message withheld: it may quote"
        " a value"
    ]
    assert quoted_secret(caplog.text) == []


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
WITHHELD = "PostgreSQL's message withheld: it may quote a value"
SQL_FROM_CHUNKS = {
    "execute: token": (
        "EXECUTE 'SELECT 1 ' || NEW.text",
        f"SyntaxError: SQLSTATE 42601, syntax error or access rule violation; {WITHHELD}",
    ),
    "execute: unterminated string": (
        "EXECUTE 'SELECT ''' || NEW.text",
        f"SyntaxError: SQLSTATE 42601, syntax error or access rule violation; {WITHHELD}",
    ),
    "execute: identifier": (
        "EXECUTE format('SELECT %I', split_part(NEW.text, ',', 1))",
        f"UndefinedColumn: SQLSTATE 42703, syntax error or access rule violation; {WITHHELD}",
    ),
    "tsquery": (
        "PERFORM to_tsquery('simple', NEW.text)",
        "SyntaxError: syntax error in tsquery: (the text it quotes withheld: it may be a value)",
    ),
}


@pytest.mark.parametrize("sql_from_chunk", sorted(SQL_FROM_CHUNKS))
async def test_an_error_of_sql_built_from_a_chunk_is_logged_without_its_text(
    ingest: IngestService, db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture, sql_from_chunk: str
) -> None:
    caplog.set_level(logging.INFO)
    statement, reason = SQL_FROM_CHUNKS[sql_from_chunk]
    async with db.connection() as conn:
        await conn.execute(AUDIT_TRIGGER.format(statement=statement).encode())
    report = await ingest.ingest([write_source(tmp_path, "files__default: 7", SECRET, ["alice"])])
    assert report.retry == ["files__default: 7"]
    lines = [r.getMessage() for r in caplog.records if r.name == ingest_module.__name__ and r.levelno >= 30]
    # before: 'syntax error at or near "Bob"', 'unterminated quoted string at or near "'Dear Bob, the merger ...',
    # 'column "Dear Bob" does not exist', 'syntax error in tsquery: "Dear Bob, the merger ..."'
    assert lines == [f"ingest: source files__default: 7 to retry after {reason}"]
    assert quoted_secret(caplog.text) == []
