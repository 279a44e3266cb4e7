"""Structured-log suites: the whole appliance (entrypoint.sh -> supervisord -> every program) driven over HTTP."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
# signed requests and multipart (contract), supervisord helpers (appliance), the whole stack (reliability)
for kit_dir in ("contract", "appliance", "reliability"):
    if str(TESTS / kit_dir) not in sys.path:
        sys.path.insert(0, str(TESTS / kit_dir))


@pytest.fixture
def stack_root() -> Iterator[Path]:
    """A short private directory outside pytest's basetemp (AF_UNIX socket paths are short)."""
    path = Path(tempfile.mkdtemp(prefix="ccb-logs-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
