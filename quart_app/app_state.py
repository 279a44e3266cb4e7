"""The enabled flag AppAPI sets with PUT /enabled, persisted in $APP_PERSISTENT_STORAGE so a restart keeps it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from appliance.safe_fs import replace_file

log = logging.getLogger(__name__)

STATE_FILE_MODE = 0o644  # what Path.write_text made under the usual umask: the flag is no secret


class EnabledState:
    """Reads the flag once at start-up; every change is written atomically (safe_fs.replace_file)."""

    def __init__(self, state_file: Path) -> None:
        self._file = state_file
        self._enabled = bool(self._read().get("enabled", False))

    @property
    def enabled(self) -> bool:
        return self._enabled

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self._file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s); starting disabled until AppAPI enables the app", self._file, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def set(self, enabled: bool) -> None:
        """Change and persist the flag; other keys in the state file are kept."""
        data = self._read()
        data["enabled"] = enabled
        self._file.parent.mkdir(parents=True, exist_ok=True)
        # its temp file is this process's own: the roles' pods start on one volume at once and each writes the flag
        replace_file(self._file, json.dumps(data), mode=STATE_FILE_MODE)
        self._enabled = enabled
        log.info("app %s (state in %s)", "enabled" if enabled else "disabled", self._file)
