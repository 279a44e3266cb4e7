"""Logging for the app process: one stderr handler behind a queue, so a slow log sink never blocks the event loop.

Every record is one line: control characters in a message (a request path, a source id, a header) are escaped, so
no request can forge a log line; the lines of a traceback are indented under their record.
"""

from __future__ import annotations

import atexit
import logging
import queue
import re
import sys
from logging.handlers import QueueHandler, QueueListener
from types import TracebackType

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# chatty per-request INFO lines of libraries; their warnings still show
QUIET_LOGGERS = ("psycopg.pool", "httpx", "httpcore", "hpack")
# C0, DEL, C1 and the Unicode line/paragraph separators: anything a terminal or a log reader may take for a new line
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
TRACEBACK_INDENT = "    "


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_controls(text: str) -> str:
    """`text` on one line: control characters as Python-style escapes (a newline becomes backslash-n)."""
    return _CONTROL.sub(_escape_one, text)


class OneLineFormatter(logging.Formatter):
    """The message with its control characters escaped; traceback and stack lines escaped and indented under it."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: ExcInfo) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join(TRACEBACK_INDENT + escape_controls(line) for line in text.split("\n"))


def configure_logging(level: str) -> bool:
    """Install the handler unless logging is configured already (hypercorn --log-config, pytest); True if installed."""
    root = logging.getLogger()
    if root.handlers:
        return False
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(FORMAT))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(records, stream, respect_handler_level=True)
    listener.start()
    atexit.register(listener.stop)
    # the queue handler formats the message (QueueHandler.prepare): escaping happens there, before the queue
    handler = QueueHandler(records)
    handler.setFormatter(OneLineFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return True
