"""Deployment example tests: the kits of the contract, pull and appliance tests (signed requests, the fake Nextcloud,
a clean environment)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for kit_dir in ("contract", "pull", "appliance", "reliability"):
    if str(TESTS / kit_dir) not in sys.path:
        sys.path.insert(0, str(TESTS / kit_dir))
