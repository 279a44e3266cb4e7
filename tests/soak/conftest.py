"""Soak runs (minutes each): collected always, run only with CCB_SOAK=1 (see README, Reliability)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SOAK_DIR = Path(__file__).resolve().parent
# the kits the soak runs share with their fast subsets
for kit_dir in ("reliability", "contract", "appliance"):
    if str(SOAK_DIR.parent / kit_dir) not in sys.path:
        sys.path.insert(0, str(SOAK_DIR.parent / kit_dir))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("CCB_SOAK") == "1":
        return
    skip = pytest.mark.skip(reason="soak run: CCB_SOAK=1 .venv/bin/pytest tests/soak -s (see README, Reliability)")
    for item in items:
        if item.path.is_relative_to(SOAK_DIR):
            item.add_marker(skip)
