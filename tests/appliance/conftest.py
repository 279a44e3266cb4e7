"""Fixtures of the appliance tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from entrypoint_kit import Entrypoint


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A short directory outside pytest's basetemp: a concurrent pytest session chmods /tmp/pytest-of-<user> to 0700,
    which would cut the unprivileged PostgreSQL user (root runs) off from its data dir; short keeps socket paths
    under the AF_UNIX limit."""
    path = Path(tempfile.mkdtemp(prefix="ccb-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def started(private_dir: Path) -> Iterator[list[Entrypoint]]:
    """Entrypoints a test starts; any still running at the end are killed with their children."""
    runs: list[Entrypoint] = []
    yield runs
    for run in runs:
        run.kill()
