"""Config selection: copy configs/config.<cpu|gpu>.yaml to the storage on first start, keep it afterwards.

A config never edited since it was copied follows a newer template, so that improved defaults reach an upgraded
install; an edited one is kept, and the defaults changed since are logged (shipped_config). Only a role with the setup
duty (normal, requestproc) copies it; the other replicas wait for that shared file.
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
from appliance.safe_fs import PRIVATE_FILE_MODE, replace_file, restrict_mode
from appliance.shipped_config import changed_defaults, read_record, shipped_before_records, write_record
from appliance.storage import StorageLayout

log = logging.getLogger(__name__)

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"
# the templates shipped before config.yaml.shipped records were kept, by sha256
TEMPLATES_BEFORE_RECORDS = "templates-before-records.sha256"
# upstream's controller.py waits as long for the requestproc replica to create the shared config
CONFIG_WAIT_S = 20 * 60
CONFIG_POLL_S = 1.0


@dataclass(frozen=True)
class ConfigChoice:
    """Which config file is in effect and whether it was (re)copied now (`followed`: replacing an untouched copy of
    an older template)."""

    path: Path
    template: Path
    copied: bool
    backup: Path | None = None
    followed: bool = False


def config_path(layout: StorageLayout, environ: Mapping[str, str] | None = None) -> Path:
    """CC_CONFIG_PATH when set (upstream's name), else $APP_PERSISTENT_STORAGE/config.yaml."""
    explicit = env_value("CC_CONFIG_PATH", environ)
    return Path(explicit).absolute() if explicit else layout.config_file


def template_for(variant: ConfigVariant, configs_dir: Path = CONFIGS_DIR) -> Path:
    return configs_dir / f"config.{variant}.yaml"


def ensure_config(
    target: Path, variant: ConfigVariant, reset: bool = False, configs_dir: Path = CONFIGS_DIR
) -> ConfigChoice:
    """Copy the template for `variant` unless `target` exists, and record which one it was; `reset` re-copies and
    keeps the old file as .bak; a changed template is copied too when the copy was never edited (the old one kept as
    .previous)."""
    template = template_for(variant, configs_dir)
    if not template.is_file():
        raise ConfigError(f"{template}: the shipped config template is missing; reinstall the appliance")
    shipped = template.read_text(encoding="utf-8")
    followed = False
    if target.exists() and not reset:
        # it may hold the database password and API keys
        restrict_mode(target, PRIVATE_FILE_MODE)
        followed = _follows_template(target, template.name, shipped, configs_dir / TEMPLATES_BEFORE_RECORDS)
        if not followed:
            return ConfigChoice(path=target, template=template, copied=False)
    backup = None
    if target.exists():
        # an untouched copy goes aside under its own name: a reset's .bak may hold the admin's edits
        backup = target.with_name(target.name + (".previous" if followed else ".bak"))
        try:
            os.replace(target, backup)
        except OSError as exc:
            if not followed:
                raise ConfigError(f"{target}: cannot move it aside: {exc.strerror}") from exc
            # a file mounted read-only (CC_CONFIG_PATH) stays what its owner mounted
            log.warning("%s was never edited but cannot be replaced by the new %s (%s)", target, template.name, exc)
            return ConfigChoice(path=target, template=template, copied=False)
        restrict_mode(backup, PRIVATE_FILE_MODE)
        if followed:
            log.info("%s was never edited: it follows the new %s (the old one is %s)", target, template.name, backup)
        else:
            log.warning("--reset-config: moved %s to %s", target, backup)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_file(target, shipped)
        write_record(target, template.name, shipped)
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write the config file: {exc.strerror}") from exc
    log.info("copied %s to %s", template.name, target)
    return ConfigChoice(path=target, template=template, copied=True, backup=backup, followed=followed)


def _follows_template(target: Path, template_name: str, shipped: str, before_records: Path) -> bool:
    """Whether the existing `target` is an untouched copy of an older version of the template (to be replaced by
    it), as its record says, or without one as `before_records` does. An edited one is kept, with a warning naming
    the defaults that changed since and that it lacks."""
    record = read_record(target)
    try:
        current = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:  # loading the config names the problem
        log.info("keeping the existing config %s (%s)", target, exc)
        return False
    if record is None and current == shipped:
        # copied before records were kept, from this very template: recorded now, so that it follows the next one
        _record_if_possible(target, template_name, shipped)
    elif record is None and shipped_before_records(current, template_name, before_records):
        return True
    if record is not None and record.template_name != template_name:
        # the hardware changed since the first start (a GPU added or gone): the copy is kept, the admin decides
        log.warning(
            "keeping %s, copied from %s, though this start picks %s for the hardware (their onnx providers and"
            " n_gpu_layers differ): start once with --reset-config to use %s (the old file is kept as .bak), or set"
            " COMPUTE_DEVICE to keep the old choice",
            target,
            record.template_name,
            template_name,
            template_name,
        )
        return False
    if record is None or record.text == shipped:
        # no record: copied before records were kept and edited since, or brought in through CC_CONFIG_PATH
        log.info("keeping the existing config %s", target)
        return False
    if current == record.text:
        return True
    changes = changed_defaults(record.text, shipped, current)
    if not changes:
        # it holds every new default: from now on it is compared with this template
        _record_if_possible(target, template_name, shipped)
        log.info("keeping the existing config %s", target)
        return False
    log.warning(
        "keeping the edited config %s; the shipped %s changed since it was copied, and it lacks these new defaults: %s."
        " Copy the ones you want from configs/%s, or re-copy it with --reset-config (the old file is kept as .bak)",
        target,
        template_name,
        "; ".join(changes),
        template_name,
    )
    return False


def _record_if_possible(target: Path, template_name: str, shipped: str) -> None:
    try:
        write_record(target, template_name, shipped)
    except OSError as exc:  # beside a file mounted read-only: it is then only kept, never followed
        log.info("cannot record the template of %s beside it (%s)", target, exc.strerror)


def defaults_it_lacks(target: Path, configs_dir: Path = CONFIGS_DIR) -> tuple[str, list[str]]:
    """The template `target` was copied from and the defaults it changed since that an edited `target` lacks (what
    the start-up log warned of); ("", []) without a record."""
    record = read_record(target)
    if record is None or not (configs_dir / record.template_name).is_file():
        return "", []
    shipped = (configs_dir / record.template_name).read_text(encoding="utf-8")
    try:
        current = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return record.template_name, []  # loading the config reports it
    if current == record.text:
        return record.template_name, []  # untouched: the next start follows the template
    return record.template_name, changed_defaults(record.text, shipped, current)


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
