"""The app process's logging: one JSON object per line on stderr; libraries' chatter stays out; nothing in a message
can start a line of its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

from secret_documents import quoted_secret

SCRIPT = """
import logging
from quart_app.app_logging import configure_logging
assert configure_logging("INFO")
assert not configure_logging("INFO")  # configured once only
logging.getLogger("quart_app.demo").info("lifecycle %s", "step", extra={"source_id": "files__default: 7"})
logging.getLogger("quart_app.demo").debug("hidden debug line")
logging.getLogger("psycopg.pool").info("hidden pool chatter")
logging.getLogger("psycopg.pool").warning("pool warning")
logging.getLogger("hypercorn.error").handlers = [logging.StreamHandler()]  # what hypercorn does when it serves
logging.getLogger("hypercorn.error").info("Running on http://127.0.0.1:1")
"""
ISO_UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _records(stderr: str) -> list[dict[str, Any]]:
    # str.splitlines also splits at U+2028, U+0085 and the like: what a careless log reader would do
    return [json.loads(line) for line in stderr.splitlines()]


def test_configure_logging_writes_json_lines_to_stderr() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    records = _records(result.stderr)
    assert [(r["level"], r["logger"], r["msg"]) for r in records] == [
        ("info", "quart_app.demo", "lifecycle step"),
        ("warning", "psycopg.pool", "pool warning"),
        ("info", "hypercorn.error", "Running on http://127.0.0.1:1"),
    ]
    assert all(r["program"] == "app" and ISO_UTC_MS.fullmatch(r["ts"]) for r in records)
    assert records[0]["source_id"] == "files__default: 7"
    assert "request_id" not in records[0]  # no request is being handled


FORGED = "2099-01-01 00:00:00,000 ERROR quart_app.auth: forged"
FORGING_SCRIPT = f"""
import logging
from quart_app.app_logging import configure_logging
assert configure_logging("INFO")
forged = {json.dumps('{"ts": "2099", "msg": "' + FORGED + '"}')}
log = logging.getLogger("quart_app.demo")
log.warning("refused GET %s", "/x\\n" + forged + "\\r\\x1b[2K\\u2028" + forged + "\\x85" + forged + "\\u2029")
try:
    raise ValueError("bad source id 'files__default: 1\\n" + forged + "'")
except ValueError:
    log.exception("failed")
"""


def test_control_characters_cannot_forge_log_lines() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FORGING_SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    records = _records(result.stderr)
    assert len(records) == 2, result.stderr
    assert not [r for r in records if r.get("ts") == "2099"]
    forged = '{"ts": "2099", "msg": "' + FORGED + '"}'
    assert records[0]["msg"] == f"refused GET /x\n{forged}\r\x1b[2K\u2028{forged}\x85{forged}\u2029"
    # a traceback is one field of its record
    assert records[1]["msg"] == "failed"
    assert records[1]["exc"].startswith("Traceback (most recent call last):\n")
    assert records[1]["exc"].endswith(f"ValueError: bad source id 'files__default: 1\n{forged}'")


DATABASE_SCRIPT = """
import logging, os
import psycopg
from quart_app.app_logging import configure_logging
assert configure_logging("INFO")
with psycopg.connect(os.environ["DSN"], autocommit=True) as conn:
    try:
        try:
            # an admin's trigger refusing a chunk, quoting it in its message and DETAIL
            conn.execute(
                "DO $$ BEGIN RAISE EXCEPTION 'refused: %', 'Dear Bob, the merger with Acme is off.'"
                " USING DETAIL = 'Dear Bob'; END $$"
            )
        except psycopg.Error as exc:
            raise RuntimeError("the embedding loop stopped") from exc
    except RuntimeError:
        logging.getLogger("quart_app.background_loops").exception("background loop embedding failed")
"""


def test_a_traceback_holding_a_database_error_is_logged_without_its_text(fresh_dsn: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", DATABASE_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "DSN": fresh_dsn},
    )
    [record] = _records(result.stderr)
    # the frames and both exceptions stay; PostgreSQL's text gives way to its SQLSTATE and condition
    assert record["exc"].startswith("Traceback (most recent call last):\n"), record
    assert (
        "psycopg.errors.RaiseException: SQLSTATE P0001, PL/pgSQL raise exception; PostgreSQL's message withheld: it"
        " may quote a value\n\nThe above exception was the direct cause of the following exception:" in record["exc"]
    ), record["exc"]
    assert record["exc"].endswith("RuntimeError: the embedding loop stopped")
    assert quoted_secret(result.stderr) == []
