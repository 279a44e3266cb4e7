"""The enabled flag AppAPI sets with PUT /enabled, persisted in $APP_PERSISTENT_STORAGE so a restart keeps it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class EnabledState:
    """Reads the flag once at start-up; every change is written atomically (temp file + rename)."""

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
        # a temp file of this process's own: the roles' pods start on one volume at once and each writes the flag
        tmp = self._file.with_name(f"{self._file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self._file)
        self._enabled = enabled
        log.info("app %s (state in %s)", "enabled" if enabled else "disabled", self._file)
