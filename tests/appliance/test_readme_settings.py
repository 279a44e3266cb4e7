"""The README's table of environment variables is the declared settings, row for row, with the code's defaults."""

from __future__ import annotations

import re

from appliance_kit import REPO

from appliance.env_settings import ENV_SETTINGS

README = (REPO / "README.md").read_text()
ENTRYPOINT = (REPO / "entrypoint.sh").read_text()
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
