"""Config selection: copy configs/config.<cpu|gpu>.yaml to the storage on first start, keep it afterwards.

Only a role with the setup duty (normal, requestproc) copies it; the other replicas wait for that shared file.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from appliance.app_role import AppRole, Duty, replica_roles
from appliance.env_settings import env_value
from appliance.errors import ConfigError
from appliance.probe import ConfigVariant
from appliance.safe_fs import PRIVATE_FILE_MODE, restrict_mode
from appliance.storage import StorageLayout

log = logging.getLogger(__name__)

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"
# upstream's controller.py waits as long for the requestproc replica to create the shared config
CONFIG_WAIT_S = 20 * 60
CONFIG_POLL_S = 1.0


@dataclass(frozen=True)
class ConfigChoice:
    """Which config file is in effect and whether it was (re)copied now."""

    path: Path
    template: Path
    copied: bool
    backup: Path | None = None


def config_path(layout: StorageLayout, environ: Mapping[str, str] | None = None) -> Path:
    """CC_CONFIG_PATH when set (upstream's name), else $APP_PERSISTENT_STORAGE/config.yaml."""
    explicit = env_value("CC_CONFIG_PATH", environ)
    return Path(explicit).absolute() if explicit else layout.config_file


def template_for(variant: ConfigVariant, configs_dir: Path = CONFIGS_DIR) -> Path:
    return configs_dir / f"config.{variant}.yaml"


def ensure_config(
    target: Path, variant: ConfigVariant, reset: bool = False, configs_dir: Path = CONFIGS_DIR
) -> ConfigChoice:
    """Copy the template for `variant` unless `target` exists; `reset` re-copies and keeps the old file as .bak."""
    template = template_for(variant, configs_dir)
    if not template.is_file():
        raise ConfigError(f"{template}: the shipped config template is missing; reinstall the appliance")
    if target.exists() and not reset:
        log.info("keeping the existing config %s", target)
        # it may hold the database password and API keys
        restrict_mode(target, PRIVATE_FILE_MODE)
        return ConfigChoice(path=target, template=template, copied=False)
    backup = None
    if target.exists():
        backup = target.with_name(target.name + ".bak")
        os.replace(target, backup)
        restrict_mode(backup, PRIVATE_FILE_MODE)
        log.warning("--reset-config: moved %s to %s", target, backup)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".tmp")
        _write_private(partial, template.read_bytes())
        os.replace(partial, target)
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write the config file: {exc.strerror}") from exc
    log.info("copied %s to %s", template.name, target)
    return ConfigChoice(path=target, template=template, copied=True, backup=backup)


def _write_private(path: Path, content: bytes) -> None:
    """Write `path` readable by this user only (also when a stale one was left with a wider mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), PRIVATE_FILE_MODE)
        handle.write(content)


def wait_for_shared_config(
    target: Path, role: AppRole, timeout_s: float = CONFIG_WAIT_S, poll_s: float = CONFIG_POLL_S
) -> Path:
    """Wait up to `timeout_s` for the config a setup role creates; ConfigError naming the file and who creates it."""
    creators = " or ".join([*replica_roles(Duty.SETUP), AppRole.NORMAL])
    if not target.exists():
        log.info(
            "config file %s not found; APP_ROLE=%s does not create it: waiting up to %g s for the %s replica to do so",
            target,
            role,
            timeout_s,
            creators,
        )
        deadline = time.monotonic() + timeout_s
        while not target.exists():
            if time.monotonic() >= deadline:
                raise ConfigError(
                    f"{target}: the config file did not appear within {timeout_s:g} s. APP_ROLE={role} does not create"
                    f" it, the {creators} replica does at start-up: start that replica first and give both the same"
                    " persistent storage (APP_PERSISTENT_STORAGE, or CC_CONFIG_PATH)"
                )
            time.sleep(poll_s)
        log.info("config file %s found; continuing the start-up", target)
    return target
