"""Damaged files that carry one known sentence where a parser library quotes what it read, so a test can look for
that sentence (and its words, its bytes as hex) in every log line and response."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import compressed_rtf
import openpyxl
from extract_msg.ole_writer import OleWriter

SECRET = "Dear Bob, the merger with Acme is off."
# any of these in a log line or response is the document's text, quoted
SECRET_WORDS = ("Dear", "Bob", "merger", "Acme")
_HEX_RUN = " ".join(f"0x{byte:02X}" for byte in SECRET.encode()[:3])


def quoted_secret(text: str) -> list[str]:
    """The secret's words (or its first bytes as a run of hex, as lxml shows them) found in `text`."""
    found = [word for word in SECRET_WORDS if re.search(rf"\b{word}\b", text)]
    return found + ([_HEX_RUN] if _HEX_RUN.lower() in text.lower() else [])


# an XML file declaring an entity whose system id is the sentence: defusedxml refuses it, and its exception's
# message quotes the declaration ("EntitiesForbidden(name='memo', system_id='Dear Bob, ...', public_id=None)")
XML_WITH_SECRET_ENTITY = f"<?xml version='1.0'?><!DOCTYPE memo [<!ENTITY memo SYSTEM '{SECRET}'>]><memo>&memo;</memo>"


def msg_with_broken_rtf_body(path: Path) -> Path:
    """An Outlook .msg with no plain body and an RTF body encapsulating HTML with a stray '}': extract-msg logs an
    ERROR with the traceback of RTFDE's parser, whose lark error shows the line of the mail it stopped in."""
    writer = OleWriter()
    writer.addEntry("__substg1.0_001A001F", "IPM.Note".encode("utf-16-le"))
    writer.addEntry("__substg1.0_0037001F", "Quarterly plans".encode("utf-16-le"))
    rtf = b"{\\rtf1\\ansi\\fromhtml1 {\\*\\htmltag " + SECRET.encode() + b"}}}"
    writer.addEntry("__substg1.0_10090102", compressed_rtf.compress(rtf))
    writer.addEntry("__properties_version1.0", b"\x00" * 32)
    writer.addEntry("__nameid_version1.0", storage=True)
    for stream in ("00020102", "00030102", "00040102"):
        writer.addEntry(f"__nameid_version1.0/__substg1.0_{stream}", b"")
    writer.write(str(path))
    return path


def xlsx_with_text_in_a_number_cell(path: Path, text: str) -> Path:
    """A workbook whose cell A1 says it holds a number and holds `text` (a generator's bug): openpyxl's float()
    fails on it, with a ValueError quoting the cell."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"] = 12345
    saved = io.BytesIO()
    workbook.save(saved)
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = source.read(member.filename)
            if member.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<v>12345</v>", f"<v>{text}</v>".encode())
            target.writestr(member, data)
    return path
