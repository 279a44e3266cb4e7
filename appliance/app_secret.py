"""The AppAPI secret: APP_SECRET when AppAPI (or the admin) sets it, else one generated once for local use."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

from appliance.env_settings import env_value
from appliance.safe_fs import create_file_nofollow
from appliance.storage import StorageLayout

log = logging.getLogger(__name__)


def read_app_secret(layout: StorageLayout, environ: Mapping[str, str] | None = None) -> str:
    """APP_SECRET, else the secret `ensure_local_secret` wrote into the storage, else "" (every request is refused)."""
    value = env_value("APP_SECRET", environ)
    if value:
        return value
    try:
        return layout.secret_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def ensure_local_secret(layout: StorageLayout, environ: Mapping[str, str] | None = None) -> bool:
    """Without APP_SECRET (a start without AppAPI), write a random secret (0600) that the app and `ccb` read;
    True when one was created now."""
    if env_value("APP_SECRET", environ) or layout.secret_file.exists():
        return False
    # created once: another role starting on the same storage may be creating it at this moment
    if not create_file_nofollow(layout.secret_file, secrets.token_hex(32) + "\n", mode=0o600):
        return False
    log.info("APP_SECRET is not set: generated a local secret in %s (the app and ccb read it)", layout.secret_file)
    return True
