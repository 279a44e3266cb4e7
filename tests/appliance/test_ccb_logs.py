"""`ccb logs` renders the programs' JSON log lines readably and prints every other line as it is."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from appliance.log_lines import follow, log_files, render_line, tail


def test_a_json_line_reads_as_ts_level_program_logger_msg_and_extra_keys() -> None:
    line = json.dumps(
        {
            "ts": "2026-12-03T17:30:22.956Z",
            "level": "INFO",
            "program": "app",
            "logger": "quart_app.services.ingest",
            "msg": "ingest batch: 4 loaded",
            "request_id": "9f1c",
            "loaded": 4,
            "path": "/load sources",
        }
    )
    assert render_line(line + "\n") == (
        "2026-12-03T17:30:22.956Z INFO app quart_app.services.ingest: ingest batch: 4 loaded"
        ' request_id=9f1c loaded=4 path="/load sources"'
    )


def test_the_file_names_the_program_when_the_line_does_not_and_other_lines_stay_as_they_are() -> None:
    assert render_line('{"ts": "t", "level": "WARNING", "msg": "m"}', "embedder") == "t WARNING embedder: m"
    assert render_line("2026-12-03 17:30:04,069 WARNING quart_app.x: plain\n") == (
        "2026-12-03 17:30:04,069 WARNING quart_app.x: plain"
    )
    assert render_line('["not", "a", "record"]') == '["not", "a", "record"]'


def test_tail_and_follow_read_the_programs_log_files(tmp_path: Path) -> None:
    app_log = tmp_path / "app.log"
    app_log.write_text("".join(json.dumps({"ts": str(n), "level": "INFO", "msg": f"m{n}"}) + "\n" for n in range(5)))
    (tmp_path / "postgres.log").write_text("LOG:  ready\n")
    assert log_files(tmp_path, "app") == [app_log]
    assert log_files(tmp_path, None) == [app_log, tmp_path / "postgres.log"]
    assert list(tail([app_log], 2)) == ["3 INFO app: m3", "4 INFO app: m4"]
    seen: list[str] = []
    following, arrived = threading.Event(), threading.Event()

    def emit(line: str) -> None:
        seen.append(line)
        arrived.set()

    def stop() -> bool:
        following.set()  # asked first once the files are open at their end
        return arrived.is_set()

    follower = threading.Thread(target=follow, args=([app_log], emit, stop))
    follower.start()
    try:
        assert following.wait(30)
        with app_log.open("a") as handle:
            handle.write(json.dumps({"ts": "9", "level": "ERROR", "msg": "late"}) + "\n")
        assert arrived.wait(30)
    finally:
        arrived.set()
        follower.join(30)
    assert seen == ["9 ERROR app: late"]


def test_control_characters_from_a_logged_path_reach_the_terminal_escaped(tmp_path: Path) -> None:
    # anyone who can reach the port can put these in a request path; the request line logs the path
    path = "/\x1b[2J\x1b[31mhello\x07\x9b"
    line = json.dumps(
        {"ts": "t", "level": "info", "program": "app", "logger": "quart_app.request_ids", "msg": f"GET {path} 401"}
        | {"path": path, "exc": "Traceback\n  boom"}
    )
    app_log = tmp_path / "app.log"
    app_log.write_text(line + "\nplain \x1b]0;title\x07 line\n")
    assert list(tail([app_log], 2)) == [
        r"t info app quart_app.request_ids: GET /\x1b[2J\x1b[31mhello\x07\x9b 401 path=/\x1b[2J\x1b[31mhello\x07\x9b"
        r' exc="Traceback\n  boom"',
        r"plain \x1b]0;title\x07 line",
    ]
    # a message cannot start a line of its own that looks like another record
    forged = render_line(json.dumps({"ts": "t", "level": "info", "msg": "ok\nt error app: forged"}), "app")
    assert forged == r"t info app: ok\nt error app: forged"


def test_follow_reads_on_in_the_new_file_when_it_outgrew_the_old_one_before_the_next_poll(tmp_path: Path) -> None:
    app_log = tmp_path / "app.log"
    app_log.write_text(json.dumps({"ts": "0", "level": "INFO", "msg": "old"}) + "\n")
    seen: list[str] = []
    following, done = threading.Event(), threading.Event()

    def emit(line: str) -> None:
        seen.append(line)
        if line.endswith("last"):
            done.set()

    def stop() -> bool:
        following.set()
        return done.is_set()

    follower = threading.Thread(target=follow, args=([app_log], emit, stop))
    follower.start()
    try:
        assert following.wait(30)
        with app_log.open("a") as handle:
            handle.write(json.dumps({"ts": "1", "level": "INFO", "msg": "just before the rotation"}) + "\n")
        # a busy program's rotation: the new file is longer than the old one by the follower's next look
        app_log.rename(tmp_path / "app.log.1")
        busy = "".join(json.dumps({"ts": "2", "level": "INFO", "msg": f"new {n}"}) + "\n" for n in range(20))
        (tmp_path / "app.log.new").write_text(busy + json.dumps({"ts": "3", "level": "INFO", "msg": "last"}) + "\n")
        (tmp_path / "app.log.new").rename(app_log)
        assert done.wait(10), seen
    finally:
        done.set()
        follower.join(30)
    assert seen == [
        "1 INFO app: just before the rotation",
        *(f"2 INFO app: new {n}" for n in range(20)),
        "3 INFO app: last",
    ]
