"""Logging for the app process: one stderr handler behind a queue, so a slow log sink never blocks the event loop."""

from __future__ import annotations

import atexit
import logging
import queue
import sys
from logging.handlers import QueueHandler, QueueListener

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# chatty per-request INFO lines of libraries; their warnings still show
QUIET_LOGGERS = ("psycopg.pool", "httpx", "httpcore", "hpack")


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
    root.addHandler(QueueHandler(records))
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return True
