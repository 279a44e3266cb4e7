"""Deployment example tests: the kits of the contract and pull tests (signed requests, the fake Nextcloud)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for kit_dir in ("contract", "pull"):
    if str(TESTS / kit_dir) not in sys.path:
        sys.path.insert(0, str(TESTS / kit_dir))
