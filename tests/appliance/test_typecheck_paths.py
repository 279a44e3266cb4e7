"""mypy sees the test kits: every folder the tests and benchmarks import modules from by bare name is on mypy_path."""

from __future__ import annotations

import tomllib
from pathlib import Path

from appliance_kit import REPO


def _folders_with_modules(root: Path) -> set[str]:
    """`root` and its direct subfolders that hold Python modules (a deeper folder, such as the fake pynvml's, is put
    on a subprocess's path by its tests, never imported from by bare name)."""
    folders = [root, *(path for path in root.iterdir() if path.is_dir())]
    return {str(folder.relative_to(REPO)) for folder in folders if any(folder.glob("*.py"))}


def test_every_folder_of_test_and_bench_modules_is_on_mypy_path() -> None:
    mypy = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    wanted = _folders_with_modules(REPO / "tests") | _folders_with_modules(REPO / "bench")
    # without it mypy names a folder's modules tests.x.y, and `from x_kit import ...` is silently Any
    assert mypy["explicit_package_bases"] is True
    assert sorted(wanted - set(mypy["mypy_path"])) == []
