"""Structured logs: every program of the appliance writes one JSON object per line.

A line has `ts` (ISO 8601 UTC, milliseconds), `level`, `program`, `logger`, `msg`, `request_id` while a request is
handled, then any structured keys the call passed in `extra=`, and `exc` (the traceback as one string). JSON escaping
keeps every record on one line, so no message (a request path, a source id) can forge another line; the line and
paragraph separators and C1 controls, which JSON leaves as they are, are escaped too because line readers split on
them. `ccb logs` renders these lines; `/downloadLogs` ships them.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import re
import sys
import time
from collections.abc import Sequence
from contextvars import ContextVar
from logging.handlers import QueueHandler, QueueListener
from typing import IO, Any, NoReturn

# the id of the request being handled (AA-REQUEST-ID or generated), on every line logged for it
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
# chatty per-request INFO lines of libraries; their warnings still show
QUIET_LOGGERS = ("psycopg.pool", "httpx", "httpcore", "hpack")
# what every LogRecord has; anything else on a record came from `extra=` and is logged as a key of its own
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# JSON leaves these unescaped, but str.splitlines and many viewers break lines at them
_LINE_BREAKERS = re.compile("[\x7f-\x9f\u2028\u2029]")


def utc_timestamp(seconds: float) -> str:
    """'2026-12-03T17:20:01.123Z' for a time.time() value."""
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((seconds - whole) * 1000):03d}Z"


def json_line(fields: dict[str, Any]) -> str:
    """One JSON object on one line, UTF-8 text kept readable, every line-breaking character escaped."""
    text = json.dumps(fields, ensure_ascii=False, default=str)
    return _LINE_BREAKERS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class JsonLineFormatter(logging.Formatter):
    """Formats a record as the appliance's JSON line for `program`."""

    def __init__(self, program: str) -> None:
        super().__init__()
        self.program = program

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": utc_timestamp(record.created),
            "level": LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
            "program": self.program,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            fields["request_id"] = current
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                fields[key] = value
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            # a traceback a handler filter has already written (the parse workers' withholds a file's content)
            fields["exc"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return json_line(fields)


# the threads that write queued records; stopped (every record written) at exit
_writers: list[QueueListener] = []


def flush_log_writer() -> None:
    """Write every queued record and stop the writer thread: atexit does it, and a process leaving by os._exit
    (which skips atexit) must call it first."""
    while _writers:
        _writers.pop().stop()


atexit.register(flush_log_writer)


def exit_without_finalizing(code: int = 0) -> NoReturn:
    """End the process now, its log written out: a thread still inside native code would abort the interpreter's
    finalization."""
    flush_log_writer()
    logging.shutdown()
    os._exit(code)


def configure_json_logging(
    program: str,
    level: str,
    stream: IO[str] | None = None,
    queued: bool = True,
    filters: Sequence[logging.Filter] = (),
) -> bool:
    """JSON lines of `program` on `stream` (stderr: supervisord writes and rotates the file) unless logging is
    configured already (hypercorn --log-config, pytest); True if installed.

    `queued`: records are formatted in the caller (so the request id is the caller's) and written by a thread, so a
    slow sink never blocks an event loop. `filters` go on the handler, so they see every record that reaches it.
    """
    root = logging.getLogger()
    if root.handlers:
        return False
    formatter = JsonLineFormatter(program)
    sink = logging.StreamHandler(stream or sys.stderr)
    if queued:
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        listener = QueueListener(records, sink, respect_handler_level=True)
        listener.start()
        _writers.append(listener)
        # QueueHandler.prepare formats the record: the JSON line is made here, the listener writes it as it is
        handler: logging.Handler = QueueHandler(records)
    else:
        handler = sink
    handler.setFormatter(formatter)
    for record_filter in filters:
        handler.addFilter(record_filter)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return True
