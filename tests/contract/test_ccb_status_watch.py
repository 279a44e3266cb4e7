"""`ccb status --watch` against the real app server while the app restarts (supervisord's restart, an upgrade, a
crash): the watch says the app does not answer and goes on once it is back, as it promises "until Ctrl-C"."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from live_app import answers_heartbeat
from live_app_kit import ccb_env, running_live_app

from appliance.ccb import EXIT_UNREACHABLE


def _lines(stream: IO[str]) -> tuple[queue.Queue[str | None], threading.Thread]:
    """The stream's lines as they come, then None at its end; and the thread that reads them."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    return lines, reader


def _next_report(lines: queue.Queue[str | None], wanted: str) -> dict[str, Any]:
    """The next JSON line that has the key `wanted`; fails if the watch ends first."""
    while True:
        line = lines.get(timeout=120)
        assert line is not None, f"ccb status --watch ended while {wanted!r} was awaited"
        report: dict[str, Any] = json.loads(line)
        if wanted in report:
            return report


def test_the_watch_goes_on_across_an_app_restart(tmp_path: Path, fresh_dsn: str, embedder_url: str) -> None:
    command = [sys.executable, "-c", "import sys; from appliance.ccb import main; sys.exit(main())"]
    with (
        running_live_app(tmp_path, fresh_dsn, embedder_url) as (base, server),
        subprocess.Popen(
            [*command, "status", "--watch", "--json", "--interval", "0.2"],
            env=ccb_env(base, tmp_path / "storage"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as watch,
    ):
        assert watch.stdout is not None and watch.stderr is not None
        lines, reader = _lines(watch.stdout)
        try:
            assert "documents" in _next_report(lines, "documents")
            server.stop()
            gone = _next_report(lines, "error")
            assert gone["exit"] == EXIT_UNREACHABLE and "does not answer" in gone["error"]
            server.start(lambda: answers_heartbeat(base), timeout_s=180)
            assert "documents" in _next_report(lines, "documents")
        finally:
            watch.kill()
            reader.join(30)  # done before the pipes close
