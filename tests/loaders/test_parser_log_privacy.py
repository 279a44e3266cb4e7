"""Parser libraries quote the bytes they read in their warnings (pypdf: `invalid pdf header: b'...'`); the parse
workers' log keeps the warning and withholds the bytes: a user's file never reaches our logs."""

import json
import pwd
from pathlib import Path

import pytest
from loader_fixture_files import write_pdf
from pool_kit import text_of

from quart_app.chunking import ChunkerSpec
from quart_app.loaders import ParseLimits, ParsePool
from quart_app.loaders.library_log_redaction import WITHHELD, withhold_bytes

# a letter pasted in front of a PDF: pypdf reads the file anyway and warns, quoting its first five bytes
USER_TEXT = b"Dear Bob, the merger is off."


async def test_a_pdf_with_a_bad_header_is_logged_by_the_parser_without_the_files_bytes(
    chunker_spec: ChunkerSpec, parser_user: pwd.struct_passwd | None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "letter.pdf"
    path.write_bytes(USER_TEXT + write_pdf(tmp_path).read_bytes())
    # a pool of the test's own: its workers write to the stderr that capfd captures
    async with ParsePool(1, ParseLimits(timeout_s=30.0, memory_mb=256), chunker=chunker_spec) as pool:
        chunks = await pool.parse_and_chunk(path, "application/pdf", "letter.pdf")
    assert "Invoice number 4711" in text_of(chunks)
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    parser_lines = [line for line in lines if line["program"] == "parser"]
    assert {"level": "warning", "logger": "pypdf._reader", "msg": f"invalid pdf header: {WITHHELD}"} in [
        {key: line[key] for key in ("level", "logger", "msg")} for line in parser_lines
    ], parser_lines
    assert "Dear" not in json.dumps(parser_lines)


def test_every_bytes_literal_in_a_message_is_withheld_and_the_rest_kept() -> None:
    message = r"""bad stream b'%PDF-' at 12, then b"it's \"x\"\n" and b'\xff\'' (verb'no' stays)"""
    assert withhold_bytes(message) == f"bad stream {WITHHELD} at 12, then {WITHHELD} and {WITHHELD} (verb'no' stays)"
