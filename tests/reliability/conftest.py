"""Reliability suites (crash, load): the whole appliance or the live server, driven over HTTP like the PHP app."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
# the kits of the contract and appliance tests: signed requests, Guzzle multipart, supervisord helpers
for kit_dir in ("contract", "appliance"):
    if str(TESTS / kit_dir) not in sys.path:
        sys.path.insert(0, str(TESTS / kit_dir))


@pytest.fixture
def stack_root() -> Iterator[Path]:
    """A short private directory outside pytest's basetemp (see tests/appliance/conftest.py: private_dir)."""
    path = Path(tempfile.mkdtemp(prefix="ccb-rel-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
