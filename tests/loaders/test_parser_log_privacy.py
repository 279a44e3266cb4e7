"""Parser libraries quote what they read, in their warnings (pypdf: `invalid pdf header: b'...'`) and in the
tracebacks they log (extract-msg: RTFDE's parser error shows a line of the mail); the parse workers' log keeps the
library, the exception classes and the messages' shape and withholds the file's content."""

import json
import pwd
from pathlib import Path

import pytest
from loader_fixture_files import write_pdf
from pool_kit import text_of
from secret_documents import msg_with_broken_rtf_body, quoted_secret

from quart_app.chunking import ChunkerSpec
from quart_app.loaders import ParseLimits, ParsePool
from quart_app.loaders.errors import CorruptDocumentError
from quart_app.loaders.library_log_redaction import (
    TEXT_WITHHELD,
    WITHHELD,
    library_message,
    withhold_bytes,
    withhold_document_text,
)

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


def _parser_lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    return [line for line in lines if line["program"] == "parser"]


async def test_a_traceback_a_library_logs_keeps_its_exceptions_and_withholds_the_mails_text(
    chunker_spec: ChunkerSpec, parser_user: pwd.struct_passwd | None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = msg_with_broken_rtf_body(tmp_path / "plans.msg")
    async with ParsePool(1, ParseLimits(timeout_s=30.0, memory_mb=256), chunker=chunker_spec) as pool:
        with pytest.raises(CorruptDocumentError):
            await pool.parse_and_chunk(path, "application/vnd.ms-outlook", "plans.msg")
    parser_lines = _parser_lines(capfd)
    [logged] = [line for line in parser_lines if line["logger"] == "extract_msg.msg_classes.message_base"]
    assert (logged["level"], logged["msg"]) == (
        "error",
        "Critical error accessing the body. File opened but accessing the body will throw an exception.",
    )
    # the chain of exceptions an admin reports upstream, each with its frames, its class and its message's shape
    exc_lines = [line for line in logged["exc"].splitlines() if not line.startswith(" ")]
    assert exc_lines == [
        "Traceback (most recent call last):",
        "lark.exceptions.UnexpectedCharacters: No terminal matches <text withheld> in the current parser context, at"
        " line 1 col 75 [7 more lines withheld]",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        f"lark.exceptions.UnexpectedToken: Unexpected token Token({TEXT_WITHHELD}, {WITHHELD}) at line 1, column 75."
        " [3 more lines withheld]",
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        "Traceback (most recent call last):",
        "RTFDE.exceptions.MalformedEncapsulatedRtf: Malformed encapsulated RTF discovered:",
    ]
    assert 'File "' in logged["exc"] and "in deencapsulate" in logged["exc"]
    assert quoted_secret(json.dumps(parser_lines)) == [], parser_lines


def test_every_bytes_literal_in_a_message_is_withheld_and_the_rest_kept() -> None:
    message = r"""bad stream b'%PDF-' at 12, then b"it's \"x\"\n" and b'\xff\'' (verb'no' stays)"""
    assert withhold_bytes(message) == f"bad stream {WITHHELD} at 12, then {WITHHELD} and {WITHHELD} (verb'no' stays)"


def test_a_library_message_keeps_its_first_line_and_withholds_quotes_and_byte_runs() -> None:
    message = "can't convert 'Dear Bob' (\"it's\") near b'x' or Bytes: 0x44 0x65 0x61, the user's byte 0xff\nDear Bob"
    assert withhold_document_text(message) == (
        f"can't convert {TEXT_WITHHELD} ({TEXT_WITHHELD}) near {WITHHELD} or Bytes: {WITHHELD}, the user's byte 0xff"
        " [1 more line withheld]"
    )


def test_a_codec_error_keeps_codec_position_and_reason_but_not_the_character() -> None:
    decode = UnicodeDecodeError("utf-8", b"Dear \xff Bob", 5, 6, "invalid start byte")
    assert library_message(decode) == "'utf-8' codec can't decode byte 0xff in position 5: invalid start byte"
    encode = UnicodeEncodeError("ascii", "Dear Böb", 6, 7, "ordinal not in range(128)")
    assert library_message(encode) == "'ascii' codec can't handle position 6-6: ordinal not in range(128)"
