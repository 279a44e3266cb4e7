"""`ccb logs`: the JSON log lines under $APP_PERSISTENT_STORAGE/logs/ rendered as `ts level program logger: msg k=v`."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

# the keys every JSON line has; any other key is printed after the message as k=v
_FIXED = ("ts", "level", "program", "logger", "msg")
FOLLOW_POLL_S = 0.5
# C0 (but tab), DEL and C1 as their escapes: a logged path or file name must not drive the admin's terminal or start a
# line that looks like another record
_CONTROL_ESCAPES = {
    code: chr(code).encode("unicode_escape").decode("ascii") for code in (*range(0x20), *range(0x7F, 0xA0)) if code != 9
}


def render_line(line: str, program: str = "") -> str:
    """A JSON object line as `ts level program logger: msg k=v ...`; any other line as it is; control characters
    escaped in both."""
    return _readable(line.rstrip("\n"), program).translate(_CONTROL_ESCAPES)


def _readable(text: str, program: str) -> str:
    try:
        record = json.loads(text)
    except ValueError:
        return text
    if not isinstance(record, dict) or "msg" not in record:
        return text
    head = " ".join(
        str(part)
        for part in (record.get("ts", ""), record.get("level", ""), record.get("program") or program)
        if part != ""
    )
    logger = record.get("logger")
    extra = " ".join(f"{key}={_value(value)}" for key, value in record.items() if key not in _FIXED)
    message = f"{head} {logger}: {record['msg']}" if logger else f"{head}: {record['msg']}"
    return f"{message} {extra}" if extra else message


def _value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return json.dumps(text, ensure_ascii=False) if not text or any(ch.isspace() for ch in text) else text


def log_files(log_dir: Path, program: str | None) -> list[Path]:
    """The current log file of `program` (its name or `<program>.log`), or every current `*.log` file."""
    if program:
        candidates = [log_dir / program, log_dir / f"{program}.log"]
        return [path for path in candidates if path.is_file()][:1]
    return sorted(path for path in log_dir.glob("*.log") if path.is_file())


def tail(paths: Sequence[Path], lines: int) -> Iterator[str]:
    """The last `lines` lines of each file, rendered, file after file."""
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in deque(handle, maxlen=lines):
                yield render_line(line, path.stem)


def follow(paths: Sequence[Path], emit: Callable[[str], None], stop: Callable[[], bool] = lambda: False) -> None:
    """Print lines appended to `paths` from now on (a rotated file is read to its end, then the new one from its
    start) until `stop()`."""
    handles: dict[Path, IO[str]] = {}
    try:
        for path in paths:
            handle: IO[str] = path.open(encoding="utf-8", errors="replace")
            handle.seek(0, 2)
            handles[path] = handle
        while not stop():
            quiet = True
            for path, handle in list(handles.items()):
                for line in handle:
                    emit(render_line(line, path.stem))
                    quiet = False
                if _replaced(path, handle):
                    for line in handle:  # what was written to it between our last read and the rotation
                        emit(render_line(line, path.stem))
                    handle.close()
                    handles[path] = path.open(encoding="utf-8", errors="replace")
                    quiet = False
            if quiet:
                time.sleep(FOLLOW_POLL_S)
    finally:
        for handle in handles.values():
            handle.close()


def _replaced(path: Path, handle: IO[str]) -> bool:
    """Whether `path` names another file than `handle` reads (rotated) or was truncated; the size alone misses a new
    file that grew past our position within one poll."""
    try:
        current = path.stat()
    except FileNotFoundError:  # renamed away, the new one not created yet
        return False
    return current.st_ino != os.fstat(handle.fileno()).st_ino or current.st_size < handle.tell()
