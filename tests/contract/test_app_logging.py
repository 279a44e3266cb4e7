"""The app process's logging: INFO lines reach stderr through the queue; libraries' chatter stays out."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging
from quart_app.app_logging import configure_logging
assert configure_logging("INFO")
assert not configure_logging("INFO")  # configured once only
logging.getLogger("quart_app.demo").info("lifecycle %s", "step")
logging.getLogger("quart_app.demo").debug("hidden debug line")
logging.getLogger("psycopg.pool").info("hidden pool chatter")
logging.getLogger("psycopg.pool").warning("pool warning")
"""


def test_configure_logging_writes_info_to_stderr() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    assert "INFO quart_app.demo: lifecycle step" in result.stderr
    assert "WARNING psycopg.pool: pool warning" in result.stderr
    assert "hidden" not in result.stderr
