"""/downloadLogs copies each log as it was when listed, ending on a whole line even while a writer appends."""

from __future__ import annotations

import io

import pytest

from quart_app.routes import admin
from quart_app.routes.admin import copy_whole_lines

LISTED = b'{"msg": "one"}\n{"msg": "two"}\n{"msg": "th'


def _copied(content: bytes, size: int) -> bytes:
    target = io.BytesIO()
    copy_whole_lines(io.BytesIO(content), target, size)
    return target.getvalue()


def test_a_line_cut_by_the_listing_is_copied_to_its_end_and_later_lines_stay_out() -> None:
    grown = LISTED + b'ree"}\n{"msg": "four"}\n'
    assert _copied(grown, len(LISTED)) == LISTED + b'ree"}\n'


def test_a_file_listed_at_a_line_end_gets_nothing_written_after() -> None:
    whole = b'{"msg": "one"}\n'
    assert _copied(whole + b'{"msg": "two"}\n', len(whole)) == whole


def test_a_last_line_without_newline_is_kept_as_it_stands() -> None:
    assert _copied(LISTED, len(LISTED)) == LISTED


def test_a_tail_longer_than_the_limit_is_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin, "LINE_TAIL_BYTES", 8)
    assert _copied(LISTED + b"x" * 20 + b"\n", len(LISTED)) == LISTED


def test_files_larger_than_one_read_block_are_copied_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin, "STREAM_BYTES", 7)
    lines = b"".join(f'{{"n": {n}}}\n'.encode() for n in range(100))
    assert _copied(lines + b"late\n", len(lines)) == lines
