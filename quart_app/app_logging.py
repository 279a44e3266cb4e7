"""Logging for the app process: JSON lines (appliance.json_logging) on stderr behind a queue, so a slow log sink
never blocks the event loop; supervisord writes them to logs/app.log and rotates it."""

from __future__ import annotations

import logging

from appliance.json_logging import configure_json_logging

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


def configure_logging(level: str) -> bool:
    """Install the JSON handler unless logging is configured already (hypercorn --log-config, pytest); True if
    installed."""
    if not configure_json_logging(PROGRAM, level):
        return False
    logging.getLogger(HYPERCORN_LOGGER).addFilter(RootHandlersOnly())
    return True
