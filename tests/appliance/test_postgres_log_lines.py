"""PostgreSQL's stderr lines become the appliance's JSON records: secondary lines fold into their record, a newline
inside a message (a tab follows it) stays inside that record, and nothing a client sends can start a record."""

from __future__ import annotations

import json
import os
from pathlib import Path

from appliance.postgres_log import convert_lines, convert_stream


def test_an_error_with_its_detail_and_statement_is_one_record() -> None:
    lines = [
        '2026-12-03 17:20:01.123 UTC [4711] ccb@ccb ERROR:  duplicate key value violates unique constraint "d_pkey"',
        "2026-12-03 17:20:01.123 UTC [4711] ccb@ccb DETAIL:  Key (id)=(7) already exists.",
        "2026-12-03 17:20:01.123 UTC [4711] ccb@ccb STATEMENT:  INSERT INTO d (id, body)",
        "\tVALUES ($1, $2)",
        "2026-12-03 17:20:02.000 UTC [12] LOG:  checkpoint starting: time",
    ]
    assert convert_lines(lines) == [
        {
            "ts": "2026-12-03T17:20:01.123Z",
            "level": "error",
            "msg": 'duplicate key value violates unique constraint "d_pkey"',
            "pid": 4711,
            "severity": "ERROR",
            "user": "ccb",
            "db": "ccb",
            "detail": "Key (id)=(7) already exists.",
            "statement": "INSERT INTO d (id, body)\nVALUES ($1, $2)",
            "program": "postgres",
            "logger": "postgres",
        },
        {
            "ts": "2026-12-03T17:20:02.000Z",
            "level": "info",
            "msg": "checkpoint starting: time",
            "pid": 12,
            "severity": "LOG",
            "program": "postgres",
            "logger": "postgres",
        },
    ]


def test_a_forged_prefix_inside_a_statement_stays_in_its_record() -> None:
    # a client's SQL with a newline and a fake log prefix: PostgreSQL writes a tab after the newline
    forged = "2099-01-01 00:00:00.000 UTC [1] FATAL:  forged"
    lines = [
        '2026-12-03 17:20:01.123 UTC [4711] ccb@ccb ERROR:  syntax error at or near "x"',
        "2026-12-03 17:20:01.123 UTC [4711] ccb@ccb STATEMENT:  SELECT 1 x",
        f"\t{forged}",
    ]
    records = convert_lines(lines)
    assert len(records) == 1
    assert records[0]["statement"] == f"SELECT 1 x\n{forged}"


def test_stream_conversion_writes_json_lines_and_keeps_stray_output(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"2026-12-03 17:20:01.123 UTC [9] LOG:  database system is ready to accept connections\n")
    os.write(write_end, b"stray output of a library \xff\n2026-12-03 17:20:01.200 UTC [9] LOG:  last line, no newline")
    os.close(write_end)
    target = tmp_path / "postgres.log"
    with target.open("wb") as out:
        convert_stream(read_end, out)
    os.close(read_end)
    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [(r["level"], r["msg"]) for r in records] == [
        ("info", "database system is ready to accept connections"),
        ("info", "stray output of a library \ufffd"),
        ("info", "last line, no newline"),
    ]
    assert all(list(r)[:5] == ["ts", "level", "program", "logger", "msg"] for r in records)
