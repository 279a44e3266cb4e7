"""APP_ROLE is read as upstream reads it: empty or unknown means normal."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from appliance.app_role import AppRole, app_role
from appliance.storage import StorageLayout


@pytest.mark.parametrize(
    ("raw", "role"),
    [
        ("indexing", AppRole.INDEXING),
        ("updatesproc", AppRole.UPDATESPROC),
        ("requestproc", AppRole.REQUESTPROC),
        ("embedding-worker", AppRole.EMBEDDING_WORKER),
        (" Indexing ", AppRole.INDEXING),
        ("normal", AppRole.NORMAL),
        ("", AppRole.NORMAL),
    ],
)
def test_app_role_reads_each_role(raw: str, role: AppRole) -> None:
    assert app_role({"APP_ROLE": raw}) is role


def test_app_role_unset_is_normal() -> None:
    assert app_role({}) is AppRole.NORMAL


def test_app_role_unknown_is_normal_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="appliance.app_role"):
        assert app_role({"APP_ROLE": "indexer"}) is AppRole.NORMAL
    assert "APP_ROLE='indexer' is not a role" in caplog.text


@pytest.mark.parametrize(
    ("raw", "subdir"),
    [(" Indexing ", "indexing"), ("embedding-worker", "embedding-worker"), ("normal", ""), ("", ""), ("indexer", "")],
)
def test_storage_layout_keeps_a_role_subdirectory_only_for_a_named_role_other_than_normal(
    raw: str, subdir: str, tmp_path: Path
) -> None:
    layout = StorageLayout.from_env({"APP_PERSISTENT_STORAGE": str(tmp_path), "APP_ROLE": raw})
    assert layout.role == subdir
    assert layout.run_dir == (tmp_path / "run" / subdir if subdir else tmp_path / "run")
