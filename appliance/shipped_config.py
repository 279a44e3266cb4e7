"""The record of the shipped template a config.yaml was copied from, and what a newer template changed since.

A config.yaml is copied once and kept, so a default improved in a later version would never reach an install. The
record (`config.yaml.shipped`: the template's name, then its text) tells an untouched config, which may follow the new
template, from an edited one, which is kept and whose admin is told what changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from appliance.safe_fs import replace_file

# the record's first line: this prefix, then the template's file name
_HEADER = "# config.yaml was copied from configs/"
_HEADER_END = " (this copy lets the appliance see which defaults changed; do not edit)\n"
# a value longer than this is cut in the list of changed defaults
_SHOWN_CHARS = 80
_ABSENT = object()


@dataclass(frozen=True, slots=True)
class ShippedRecord:
    """The template a config was copied from: its file name and its text then."""

    template_name: str
    text: str


def record_path(config_file: Path) -> Path:
    return config_file.with_name(config_file.name + ".shipped")


def write_record(config_file: Path, template_name: str, text: str) -> None:
    """Record that `config_file` was copied from `template_name` with `text`."""
    replace_file(record_path(config_file), f"{_HEADER}{template_name}{_HEADER_END}{text}")


def read_record(config_file: Path) -> ShippedRecord | None:
    """The record beside `config_file`; None when there is none (a config from before records, or one brought in
    through CC_CONFIG_PATH) or it is not one."""
    try:
        content = record_path(config_file).read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    header, _, text = content.partition("\n")
    line = header + "\n"
    if not (line.startswith(_HEADER) and line.endswith(_HEADER_END)):
        return None
    return ShippedRecord(line[len(_HEADER) : -len(_HEADER_END)], text)


def shipped_before_records(config_text: str, template_name: str, listing: Path) -> bool:
    """Whether `config_text` is byte for byte a version of `template_name` shipped before records were kept, as
    `listing` (sha256sum lines) names them."""
    digest = hashlib.sha256(config_text.encode("utf-8")).hexdigest()
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return False
    return f"{digest}  {template_name}" in lines


def changed_defaults(old_template: str, new_template: str, config: str) -> list[str]:
    """The settings the new template changed from the old one that `config` does not already hold, as
    "key.path: old -> new" (template values only: the config's own values, which may be secrets, are never shown)."""
    changes: list[str] = []
    _compare("", _load(old_template), _load(new_template), _load(config), changes)
    return changes


def _load(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None  # an unreadable config holds none of the new values; config validation names its error


def _compare(path: str, old: Any, new: Any, config: Any, changes: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in dict.fromkeys([*old, *new]):
            held = config.get(key, _ABSENT) if isinstance(config, dict) else _ABSENT
            inner = f"{path}.{key}" if path else str(key)
            _compare(inner, old.get(key, _ABSENT), new.get(key, _ABSENT), held, changes)
        return
    if old != new and config != new:
        changes.append(f"{path}: {_shown(old)} -> {_shown(new)}")


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "(not set)"
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip().removesuffix("\n...")
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
