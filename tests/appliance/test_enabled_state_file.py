"""The enabled flag's state file is written by each process through a temp file of its own: the roles' pods start on
one volume at once, and a temp name shared by two writers made one start-up fail (seen in a CI run of
test_two_roles_on_one_volume_as_appapi_deploys_them_on_kubernetes: FileNotFoundError on the rename)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from quart_app.app_state import EnabledState

REPO = Path(__file__).resolve().parents[2]
OTHER_WRITER = (
    "import sys; from pathlib import Path; from quart_app.app_state import EnabledState; "
    "EnabledState(Path(sys.argv[1])).set(False)"
)


def test_a_second_process_writing_the_flag_meanwhile_does_not_fail_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_file = tmp_path / "app_state.json"
    real_replace = os.replace

    def replace_after_another_writer(source: str | Path, target: str | Path) -> None:
        # another role's start-up writes the same file between this one's temp file and its rename
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        subprocess.run([sys.executable, "-c", OTHER_WRITER, str(state_file)], check=True, env=env)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_after_another_writer)
    EnabledState(state_file).set(True)
    assert EnabledState(state_file).enabled
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app_state.json"]


def test_a_link_planted_at_the_temp_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    state_file = tmp_path / "app_state.json"
    state_file.with_name(f"app_state.json.{os.getpid()}.tmp").symlink_to(victim)
    EnabledState(state_file).set(True)
    assert victim.read_text() == "keep me\n"
    assert not state_file.is_symlink() and EnabledState(state_file).enabled
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app_state.json", "victim"]
