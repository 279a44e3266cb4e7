"""APP_ROLE is read as upstream reads it: empty or unknown means normal."""

from __future__ import annotations

import logging

import pytest

from appliance.app_role import AppRole, app_role


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
