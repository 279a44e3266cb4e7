"""Where `python -m appliance` logs: readable lines on the terminal, JSON lines in logs/appliance.log.

The start-up steps (storage, repairs, probe, config copy) go to logs/appliance.log as well, so they are in
/downloadLogs; pg-run runs under supervisord, which writes its stderr to logs/postgres.log: there it logs JSON only.
"""

from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler

from appliance.config import LogsConfig
from appliance.json_logging import JsonLineFormatter, configure_json_logging
from appliance.launch import launch_env_path, read_launch_env
from appliance.safe_fs import PRIVATE_DIR_MODE
from appliance.storage import StorageLayout

APPLIANCE_LOG = "appliance.log"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MIB = 1024 * 1024
# commands that change the storage: their steps belong in the appliance's log
FILE_LOGGED_COMMANDS = frozenset({"prepare", "repairs", "config"})
# commands run by supervisord: stderr is their log file
SUPERVISED_PROGRAMS = {"pg-run": "postgres"}


def rotation(layout: StorageLayout) -> tuple[int, int]:
    """(bytes, backups) of the last `prepare` (launch.env), else the config defaults."""
    launched = read_launch_env(launch_env_path(layout))
    defaults = LogsConfig()
    max_mb = launched.get("CCB_LOG_MAX_BYTES", "").removesuffix("MB")
    backups = launched.get("CCB_LOG_BACKUPS", "")
    return (
        int(max_mb) * MIB if max_mb.isdigit() else defaults.max_file_mb * MIB,
        int(backups) if backups.isdigit() else defaults.backups,
    )


def add_appliance_log(layout: StorageLayout, level: str) -> None:
    """JSON lines of this command in logs/appliance.log (rotated); skipped when logs/ cannot be made or the file
    cannot be opened (a read-only storage): the command itself then reports the storage error."""
    try:
        layout.log_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        max_bytes, backups = rotation(layout)
        handler = RotatingFileHandler(layout.log_dir / APPLIANCE_LOG, maxBytes=max_bytes, backupCount=backups)
    except OSError:
        return
    handler.setFormatter(JsonLineFormatter("appliance"))
    handler.setLevel(level.upper())
    logging.getLogger().addHandler(handler)


def configure_cli_logging(command: str, level: str) -> None:
    program = SUPERVISED_PROGRAMS.get(command)
    if program is not None:
        # unqueued: pg-run ends in execve, which would drop lines still in a queue
        configure_json_logging(program, level, queued=False)
        return
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format=TEXT_FORMAT)
    if command in FILE_LOGGED_COMMANDS:
        add_appliance_log(StorageLayout.from_env(), level)
