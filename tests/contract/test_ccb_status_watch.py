"""`ccb status --watch` against the real app server while the app restarts (supervisord's restart, an upgrade, a
crash): the watch says the app does not answer and goes on once it is back, as it promises "until Ctrl-C"."""

from __future__ import annotations

import json
import os
import pty
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner
from live_app import answers_heartbeat
from live_app_kit import ccb_env, running_live_app

from appliance.app_client import AppClient
from appliance.ccb import EXIT_UNREACHABLE, cli


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


def _interrupted_watch(base: str, storage: Path, extra: list[str], pause_s: float) -> tuple[int, str]:
    """(exit code, stderr) of a `ccb status --watch` on a terminal, sent SIGINT `pause_s` after its first output."""
    command = [sys.executable, "-c", "import sys; from appliance.ccb import main; sys.exit(main())"]
    # a pseudo-terminal, so rich's live display redraws as it does for an admin
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [*command, "status", "--watch", "--interval", "0.02", *extra],
        env={**ccb_env(base, storage), "COLUMNS": "120", "LINES": "60"},
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
    ) as watch:
        os.close(follower)
        try:
            assert os.read(leader, 65536), "ccb status --watch printed nothing"
            time.sleep(pause_s)
            watch.send_signal(signal.SIGINT)
            # drain the terminal, so a redraw never blocks on a full pty
            while watch.poll() is None:
                if select.select([leader], [], [], 0.05)[0]:
                    try:
                        os.read(leader, 65536)
                    except OSError:
                        break
            assert watch.stderr is not None
            return watch.wait(30), watch.stderr.read().decode("utf-8", "replace")
        finally:
            watch.kill()
            os.close(leader)


@pytest.mark.parametrize("extra", [[], ["--json"]], ids=["live", "json"])
def test_ctrl_c_ends_the_watch_with_exit_0_whenever_it_comes(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, extra: list[str]
) -> None:
    with running_live_app(tmp_path, fresh_dsn, embedder_url) as (base, _server):
        # moments spread over a refresh: in the request, in the redraw, in the pause between refreshes
        pauses_s = [step * 0.02 for step in range(12)]
        outcomes = [_interrupted_watch(base, tmp_path / "storage", extra, pause_s) for pause_s in pauses_s]
    assert [code for code, _stderr in outcomes] == [0] * len(outcomes), [err for _code, err in outcomes if err]
    assert not [stderr for _code, stderr in outcomes if "Traceback" in stderr or "Aborted" in stderr]


def _terminal_text_until(leader: int, text: str, marker: str, times: int = 1) -> str:
    """`text` and what the terminal shows next (without rich's colour and cursor codes), until `marker` has come
    `times` times, the program ended or 120 s passed."""
    deadline = time.monotonic() + 120
    while text.count(marker) < times and time.monotonic() < deadline:
        if select.select([leader], [], [], 0.5)[0]:
            try:
                output = os.read(leader, 65536).decode("utf-8", "replace")
            except OSError:  # the program ended: its terminal is gone
                break
            text += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)
    assert text.count(marker) >= times, text[-3000:]
    return text


def test_after_a_failed_refresh_the_live_watch_says_how_old_its_figures_are(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    """On a terminal the watch keeps the last figures when the app stops answering: the note above them says when
    they were fetched, so the admin does not read old numbers as current ones."""
    command = [sys.executable, "-c", "import sys; from appliance.ccb import main; sys.exit(main())"]
    leader, follower = pty.openpty()
    with (
        running_live_app(tmp_path, fresh_dsn, embedder_url) as (base, server),
        subprocess.Popen(
            [*command, "status", "--watch", "--interval", "0.2"],
            env={**ccb_env(base, tmp_path / "storage"), "COLUMNS": "200", "LINES": "80"},
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.DEVNULL,
        ) as watch,
    ):
        os.close(follower)
        try:
            # a few redraws: the watch is past its first report and refreshing
            seen = _terminal_text_until(leader, "", "Indexing", times=3)
            server.stop()
            seen = _terminal_text_until(leader, seen, "trying again every 0.2 s")
        finally:
            watch.kill()
            os.close(leader)
    # the first note the watch drew, up to its end
    note = seen[seen.index("error: ") : seen.index("trying again every 0.2 s")]
    assert "does not answer" in note
    assert re.search(r"the figures below are from \d\d:\d\d:\d\d \(\d+ s ago\), not current", note), note


def test_the_live_watch_goes_on_when_the_app_stops_right_after_its_first_report(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app stops between the watch's first report and its first refresh: the watch keeps the figures with the
    note, as for any later refresh, instead of ending with exit 3."""
    calls = 0
    real_status = AppClient.status
    with running_live_app(tmp_path, fresh_dsn, embedder_url) as (base, server):
        for name, value in ccb_env(base, tmp_path / "storage").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("COLUMNS", "200")  # the note on one line

        def status_then_stop(app: AppClient) -> Any:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise KeyboardInterrupt  # the admin's Ctrl-C, once a refresh after the stop was shown
            report = real_status(app)
            if calls == 1:
                server.stop()
            return report

        monkeypatch.setattr(AppClient, "status", status_then_stop)
        result = CliRunner().invoke(cli, ["status", "--watch", "--interval", "0.05"])
    assert result.exit_code == 0, result.output
    assert "does not answer" in result.output and "not current; trying again every 0.05 s" in result.output
