"""Logging for the app process: JSON lines (appliance.json_logging) on stderr behind a queue, so a slow log sink
never blocks the event loop; supervisord writes them to logs/app.log and rotates it."""

from __future__ import annotations

import logging

from appliance.json_logging import configure_json_logging
from quart_app.store.database_failure import database_error_of, loggable_traceback

PROGRAM = "app"
# hypercorn gives this logger a text handler of its own when it starts serving (after create_app)
HYPERCORN_LOGGER = "hypercorn.error"


class RootHandlersOnly(logging.Filter):
    """Hands a record to the root logger's handlers only: hypercorn's own text handler never sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for handler in logging.getLogger().handlers:
            if record.levelno >= handler.level:
                handler.handle(record)
        return False


class DatabaseTextFilter(logging.Filter):
    """A handler filter that renders a traceback holding a PostgreSQL error with `loggable_traceback`: a log call
    with exc_info (an unexpected error in a loop, a failed engine start) would print its DETAIL and CONTEXT."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and database_error_of(record.exc_info[1]) is not None:
            record.exc_text = loggable_traceback(record.exc_info[1])
            record.exc_info = None
        return True


def configure_logging(level: str) -> bool:
    """Install the JSON handler unless logging is configured already (hypercorn --log-config, pytest); True if
    installed."""
    if not configure_json_logging(PROGRAM, level, filters=[DatabaseTextFilter()]):
        return False
    logging.getLogger(HYPERCORN_LOGGER).addFilter(RootHandlersOnly())
    return True
