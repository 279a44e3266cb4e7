"""PostgreSQL's stderr as the appliance's JSON lines.

The embedded server keeps writing its plain log to stderr (`log_line_prefix = '%m [%p] %q%u@%d '`, UTC): its
`jsonlog` needs the logging collector, which rotates by time or by size but never bounds the number of files, and
bypasses supervisord's capture. Instead pg-run puts a pipe on the server's stdout and stderr and a small converter
process on its other end, which turns each record into one JSON line on supervisord's pipe (logs/postgres.log, rotated
like every program's log). A record's DETAIL, HINT, CONTEXT and STATEMENT lines become keys of that record.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterable
from typing import Any, BinaryIO

from appliance.json_logging import json_line, utc_timestamp

PROGRAM = "postgres"
READ_BYTES = 64 * 1024
_RECORD = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (?P<tz>\S+) \[(?P<pid>\d+)\] (?:(?P<user>\S*)@(?P<db>\S*) )?"
    r"(?P<severity>[A-Z]+[0-9]?):  (?P<msg>.*)"
)
LEVELS = {
    "LOG": "info",
    "INFO": "info",
    "NOTICE": "info",
    "WARNING": "warning",
    "ERROR": "error",
    "FATAL": "error",  # one session ends (a refused login, a terminated backend); the server goes on
    "PANIC": "critical",
}
# lines that belong to the record before them, as that record's keys
SECONDARY = {"DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION"}


def _timestamp(stamp: str, zone: str) -> str:
    """The server's own time when it logs in UTC (pgsql/postgresql.conf sets log_timezone), else ours."""
    if zone == "UTC":
        return stamp.replace(" ", "T") + "Z"
    return utc_timestamp(time.time())


def convert_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The records in a batch of complete lines, secondary and continuation lines folded into their record."""
    records: list[dict[str, Any]] = []
    last_key = "msg"
    for line in lines:
        match = _RECORD.fullmatch(line)
        if line.startswith("\t") and records:
            # PostgreSQL puts a tab after each newline inside a message
            records[-1][last_key] += "\n" + line[1:]
            continue
        if match is None:
            records.append({"ts": utc_timestamp(time.time()), "level": "info", "msg": line})
            last_key = "msg"
            continue
        severity, pid = match["severity"], int(match["pid"])
        if severity in SECONDARY and records and records[-1].get("pid") == pid:
            last_key = severity.lower()
            records[-1][last_key] = match["msg"]
            continue
        record: dict[str, Any] = {
            "ts": _timestamp(match["ts"], match["tz"]),
            "level": "debug" if severity.startswith("DEBUG") else LEVELS.get(severity, "info"),
            "msg": match["msg"],
            "pid": pid,
            "severity": severity,
        }
        if match["user"]:
            record["user"], record["db"] = match["user"], match["db"]
        records.append(record)
        last_key = "msg"
    return [{**record, "program": PROGRAM, "logger": PROGRAM} for record in records]


def _ordered(record: dict[str, Any]) -> dict[str, Any]:
    head = ("ts", "level", "program", "logger", "msg")
    return {**{key: record[key] for key in head}, **{k: v for k, v in record.items() if k not in head}}


def convert_stream(source: int, target: BinaryIO) -> None:
    """Read the server's output from fd `source` until every writer has closed it; write JSON lines to `target`.

    A read's complete lines are converted and written at once (no timer): PostgreSQL writes a record with its DETAIL
    lines in one write, and nothing waits in here when the server exits.
    """
    pending = b""
    while chunk := os.read(source, READ_BYTES):
        *lines, pending = (pending + chunk).split(b"\n")
        _write(target, convert_lines(line.decode("utf-8", "replace") for line in lines))
    if pending:
        _write(target, convert_lines([pending.decode("utf-8", "replace")]))


def _write(target: BinaryIO, records: list[dict[str, Any]]) -> None:
    if records:
        target.write("".join(json_line(_ordered(record)) + "\n" for record in records).encode("utf-8"))
        target.flush()


def pipe_output_through_converter() -> None:
    """Make this process's stdout and stderr a pipe into a converter writing JSON lines to the current stdout.

    The converter is a grandchild (double fork): never a child of the postmaster this process becomes by execve, which
    would take an unknown child's exit for a crashed backend. It ends when the server and all its processes have
    closed the pipe; Ctrl-C and supervisord's stop signal are for the server, the converter drains it to the end.
    """
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            if os.fork() == 0:
                os.close(write_end)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_IGN)
                with os.fdopen(os.dup(1), "wb") as target:
                    convert_stream(read_end, target)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    os.close(read_end)
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
