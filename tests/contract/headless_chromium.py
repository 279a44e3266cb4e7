"""Debian's `chromium` in headless mode: load a page, let its scripts run, dump the DOM or take a screenshot."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

WINDOW = (1280, 1100)
# virtual time: the page's fetches and first drawing finish before the DOM dump or screenshot
VIRTUAL_TIME_BUDGET_MS = 8000


def chromium_binary() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise RuntimeError("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")
    return found


def run_chromium(url: str, *, screenshot: Path | None = None, virtual_time_ms: int = VIRTUAL_TIME_BUDGET_MS) -> str:
    """The DOM after the page ran `virtual_time_ms` of virtual time (stdout of --dump-dom), or, with `screenshot`,
    write a PNG of the window there."""
    with tempfile.TemporaryDirectory(prefix="ccb-chromium-") as profile:
        command = [
            chromium_binary(),
            "--headless",
            # root in a container: Chromium's sandbox needs user namespaces it may not have
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--virtual-time-budget={virtual_time_ms}",
            f"--screenshot={screenshot}" if screenshot else "--dump-dom",
            url,
        ]
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}")
    return done.stdout.decode()
