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


FORGING_SCRIPT = """
import logging
from quart_app.app_logging import configure_logging
assert configure_logging("INFO")
forged = "2099-01-01 00:00:00,000 ERROR quart_app.auth: forged"
log = logging.getLogger("quart_app.demo")
log.warning("refused GET %s", "/x\\n" + forged + "\\r\\x1b[2K\\u2028" + forged)
try:
    raise ValueError("bad source id 'files__default: 1\\n" + forged + "'")
except ValueError:
    log.exception("failed")
"""


def test_control_characters_cannot_forge_log_lines() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FORGING_SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    lines = result.stderr.splitlines()
    assert not [line for line in lines if line.startswith("2099-")], result.stderr
    forged = "2099-01-01 00:00:00,000 ERROR quart_app.auth: forged"
    assert f"WARNING quart_app.demo: refused GET /x\\n{forged}\\r\\x1b[2K\\u2028{forged}" in lines[0]
    # a traceback keeps its lines, each indented under its record
    assert lines[1].endswith("ERROR quart_app.demo: failed")
    assert lines[2] == "    Traceback (most recent call last):"
    assert all(line.startswith("    ") for line in lines[2:])
    assert lines[-1] == f"    {forged}'"
