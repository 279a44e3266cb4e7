"""supervisord (appliance.supervisord_json) rotates a program's log only between lines: a line that reaches the pipe
in two writes, past the size limit after its first half, stays whole in one file. Output that never ends a line still
rotates, 1 MiB past the limit."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from appliance_kit import PYTHON, REPO, wait_for

from appliance.supervisord_json import UNENDED_LINE_BYTES

LINES = 4
LINE_BYTES = 1500
MAX_BYTES = 2000
# writes each line in two halves with a pause between, so supervisord reads (and logs) the halves apart
WRITER = f"""
import sys, time
for number in range({LINES}):
    line = (str(number) * {LINE_BYTES}).encode()
    sys.stdout.buffer.write(line[: {LINE_BYTES} // 2]); sys.stdout.flush()
    time.sleep(0.5)
    sys.stdout.buffer.write(line[{LINE_BYTES} // 2 :] + b"\\n"); sys.stdout.flush()
"""


UNENDED_PIECES = 6
UNENDED_PIECE_BYTES = 512 * 1024
# writes 3 MiB and never a newline, in pieces supervisord reads apart
UNENDED_WRITER = f"""
import sys, time
for number in range({UNENDED_PIECES}):
    sys.stdout.buffer.write(str(number).encode() * {UNENDED_PIECE_BYTES}); sys.stdout.flush()
    time.sleep(0.3)
"""


def _conf(root: Path, writer: Path) -> Path:
    conf = root / "supervisord.conf"
    conf.write_text(
        f"""[supervisord]
nodaemon=true
logfile={root}/supervisord.log
pidfile={root}/supervisord.pid

[program:writer]
command={PYTHON} {writer}
autorestart=false
startsecs=0
stdout_logfile={root}/writer.log
stdout_logfile_maxbytes={MAX_BYTES}
stdout_logfile_backups={LINES}
"""
    )
    return conf


def _writer_exited(log: Path) -> bool:
    return log.is_file() and "exited: writer" in log.read_text(errors="replace")


def _run_writer(tmp_path: Path, program: str) -> list[Path]:
    """The writer's log files, newest last, after it ran under supervisord and exited."""
    writer = tmp_path / "writer.py"
    writer.write_text(program)
    command = [PYTHON, "-m", "appliance.supervisord_json", "-n", "-c", str(_conf(tmp_path, writer))]
    with (tmp_path / "terminal.log").open("wb") as terminal:
        supervisord = subprocess.Popen(command, stdout=terminal, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            wait_for(lambda: _writer_exited(tmp_path / "supervisord.log"), 60, "the writer to exit")
        finally:
            supervisord.send_signal(signal.SIGTERM)
            supervisord.wait(30)
    return sorted(tmp_path.glob("writer.log*"), key=lambda path: -int(path.suffix[1:] if path.suffix != ".log" else 0))


def test_a_line_written_in_two_pieces_across_the_size_limit_is_never_split_between_files(tmp_path: Path) -> None:
    files = _run_writer(tmp_path, WRITER)
    assert len(files) > 1, files  # it did rotate
    # each line as (its digit, its length): a split line shows as two short pieces
    lines = [(line[:1], len(line)) for path in files for line in path.read_bytes().split(b"\n") if line]
    assert sorted(lines) == [(str(number).encode(), LINE_BYTES) for number in range(LINES)]


def test_output_without_newlines_rotates_a_mebibyte_past_the_limit(tmp_path: Path) -> None:
    files = _run_writer(tmp_path, UNENDED_WRITER)
    sizes = [path.stat().st_size for path in files]
    assert len(files) > 1, sizes
    # at most one pipe read past the point it had to rotate
    assert max(sizes) <= MAX_BYTES + UNENDED_LINE_BYTES + UNENDED_PIECE_BYTES, sizes
    written = b"".join(str(number).encode() * UNENDED_PIECE_BYTES for number in range(UNENDED_PIECES))
    assert b"".join(path.read_bytes() for path in files) == written
