"""The one way a test waits for something another process does: poll a condition until a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


# Callable[..., bool]: loops pass `lambda item=item: ...` (ruff B023), which mypy cannot match to Callable[[], bool]
def wait_for(predicate: Callable[..., bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Return once `predicate()` is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
