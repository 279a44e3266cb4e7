"""Broken, hostile and mislabelled files give a named per-file error with a helpful message, never a crash."""

import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from extract_msg.ole_writer import OleWriter
from loader_fixture_files import FIXTURES, write_docx, write_epub, write_pdf, write_pptx, write_xlsx
from secret_documents import SECRET, quoted_secret

from quart_app.loaders import (
    CorruptDocumentError,
    DecompressionBombError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    LoaderError,
    ParseLimits,
    UnsupportedMimetypeError,
    extract_text,
)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
MIB = 1024 * 1024
# a member's name as a crafted archive may choose it: text of its maker's choosing
SECRET_MEMBER = f"word/media/{SECRET}.bin"


def _with_member(source: Path, target: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item))
        dst.writestr(name, data)
    return target


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = write_pdf(tmp_path, "locked", password="secret")
    with pytest.raises(EncryptedDocumentError) as info:
        extract_text(path, "application/pdf")
    assert str(info.value) == (
        "locked (application/pdf): the PDF is encrypted with a password; "
        "remove the password protection and upload it again"
    )


def test_pdf_encrypted_with_empty_user_password_is_read(tmp_path: Path) -> None:
    path = write_pdf(tmp_path, "open-lock", password="")
    assert extract_text(path, "application/pdf") == "Invoice number 4711\n\nTotal amount due"


def test_password_protected_ooxml_is_encrypted_not_corrupt(tmp_path: Path) -> None:
    # Office stores a protected .docx as an OLE2 container with an EncryptedPackage stream
    writer = OleWriter()
    writer.addEntry("EncryptionInfo", b"\x04\x00\x04\x00" + b"\x00" * 60)
    writer.addEntry("EncryptedPackage", b"\x00" * 4200)
    path = tmp_path / "protected"
    writer.write(str(path))
    with pytest.raises(EncryptedDocumentError, match="password-protected"):
        extract_text(path, DOCX)


def _members(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return len(archive.infolist())


def test_zip_bomb_by_ratio_names_the_member_by_its_place_and_sizes_not_its_name(tmp_path: Path) -> None:
    # whoever made the archive chose its members' names: the error goes to the logs, /status and the PHP app
    bomb = _with_member(write_docx(tmp_path), tmp_path / "bomb", SECRET_MEMBER, b"\x00" * (40 * MIB))
    assert bomb.stat().st_size < MIB
    with pytest.raises(DecompressionBombError) as info:
        extract_text(bomb, DOCX)
    count = _members(bomb)
    assert re.fullmatch(
        rf"bomb \({re.escape(DOCX)}\): archive member {count} of {count} expands \d+x \(\d+ KiB to 40 MiB\), above"
        r" max_compression_ratio=200; the file looks like a zip bomb \(raise the limit if it is legitimate\)",
        str(info.value),
    ), info.value
    assert quoted_secret(str(info.value)) == []


def test_an_encrypted_member_is_named_by_its_place_not_its_name(tmp_path: Path) -> None:
    path = _with_member(write_docx(tmp_path), tmp_path / "locked", SECRET_MEMBER, b"the minutes")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        members, entry = archive.infolist(), archive.start_dir
    # the added member's central directory entry, flagged as traditionally encrypted (general purpose bit 0)
    for member in members[:-1]:
        entry += 46 + len(member.filename.encode()) + len(member.extra) + len(member.comment)
    assert data[entry : entry + 4] == b"PK\x01\x02"
    data[entry + 8] |= 0x1
    path.write_bytes(data)
    with pytest.raises(EncryptedDocumentError) as info:
        extract_text(path, DOCX)
    assert str(info.value) == (
        f"locked ({DOCX}): archive member {len(members)} of {len(members)} is encrypted; remove the password"
        " protection and upload it again"
    )


def test_zip_bomb_by_total_size(tmp_path: Path) -> None:
    path = _with_member(write_xlsx(tmp_path), tmp_path / "big", "xl/media/blob.bin", b"\x00" * (3 * MIB))
    limits = ParseLimits(max_uncompressed_mb=2, max_compression_ratio=10_000)
    with pytest.raises(DecompressionBombError, match=r"expands to 3 MiB, above max_uncompressed_mb=2"):
        extract_text(path, XLSX, limits)


def test_too_many_members(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "many", "w") as archive:
        for i in range(30):
            archive.writestr(f"m{i}", "x")
    with pytest.raises(DecompressionBombError, match="30 members, more than max_zip_members=20"):
        extract_text(tmp_path / "many", "application/epub+zip", ParseLimits(max_zip_members=20))


EPUB = "application/epub+zip"


def _without_member(source: Path, target: Path, name: str) -> Path:
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as copy:
        for item in archive.infolist():
            if item.filename != name:
                copy.writestr(item, archive.read(item))
    return target


def test_an_epub_without_its_container_names_the_standard_file(tmp_path: Path) -> None:
    # the name is the EPUB standard's, the one the loader looked up: it tells the admin what is missing
    path = _without_member(write_epub(tmp_path), tmp_path / "book", "META-INF/container.xml")
    with pytest.raises(CorruptDocumentError) as info:
        extract_text(path, EPUB)
    assert str(info.value) == f"book ({EPUB}): the book has no 'META-INF/container.xml'; it is not a valid EPUB"


def test_an_epub_without_its_package_file_does_not_name_the_file_its_container_names(tmp_path: Path) -> None:
    # whoever made the book chose the package file's name in META-INF/container.xml, text included; the error goes
    # to the logs, /status and the PHP app
    book = tmp_path / "book"
    with zipfile.ZipFile(write_epub(tmp_path)) as archive, zipfile.ZipFile(book, "w") as copy:
        for item in archive.infolist():
            data = archive.read(item)
            if item.filename == "META-INF/container.xml":
                data = data.replace(b"OEBPS/content.opf", f"OEBPS/{SECRET}.opf".encode())
            copy.writestr(item, data)
    with pytest.raises(CorruptDocumentError) as info:
        extract_text(book, EPUB)
    assert str(info.value) == (
        f"book ({EPUB}): the package (OPF) file META-INF/container.xml names is not in the book; it is not a valid"
        " EPUB (export it again from the application that made it)"
    )
    assert quoted_secret(str(info.value)) == []


@pytest.mark.parametrize("mimetype", sorted(FIXTURES))
def test_zero_bytes(mimetype: str, tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(EmptyDocumentError, match=r"^empty \(.+\): the file is empty \(0 bytes\); nothing to index$"):
        extract_text(path, mimetype)


_TEXT_TYPES = {"text/plain", "text/markdown", "application/json", "text/x-rst", "text/org", "text/csv", "text/html"}
_TEXT_MISLABELLED = sorted(set(FIXTURES) - _TEXT_TYPES)


@pytest.mark.parametrize("mimetype", _TEXT_MISLABELLED)
def test_text_file_declared_as_binary_format(mimetype: str, tmp_path: Path) -> None:
    path = tmp_path / "notes"
    path.write_text("Just a plain note, no structure at all.\n", encoding="utf-8")
    with pytest.raises(CorruptDocumentError) as info:
        extract_text(path, mimetype)
    assert str(info.value).startswith(f"notes: declared as {mimetype!r} but ")


def test_pptx_declared_as_docx(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocumentError, match=r"^pptx: declared as .*wordprocessingml.* could not be parsed"):
        extract_text(write_pptx(tmp_path), DOCX)


def test_binary_declared_as_text(tmp_path: Path) -> None:
    path = tmp_path / "noise"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(CorruptDocumentError, match="the bytes are not text in any known encoding"):
        extract_text(path, "text/plain")


@pytest.mark.parametrize("mimetype", ["application/pdf", DOCX, XLSX, PPTX])
def test_truncated_file_is_corrupt(mimetype: str, tmp_path: Path) -> None:
    writer = FIXTURES[mimetype][0]
    path = writer(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptDocumentError):
        extract_text(path, mimetype)


def test_xml_entity_expansion_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "laughs"
    path.write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "lol">]><r>&a;&a;</r>', encoding="utf-8")
    with pytest.raises(CorruptDocumentError, match="refused for safety"):
        extract_text(path, "application/xml")


def test_unsupported_mimetype(tmp_path: Path) -> None:
    path = tmp_path / "img"
    path.write_bytes(b"\x89PNG....")
    with pytest.raises(UnsupportedMimetypeError, match=r"^img: mimetype 'image/png' is not supported; supported are: "):
        extract_text(path, "image/png")


def test_file_above_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge"
    path.write_bytes(b"a" * (MIB + 1))
    with pytest.raises(DocumentTooLargeError, match=r"1\.0 MiB is above max_file_mb=1; raise the limit or split"):
        extract_text(path, "text/plain", ParseLimits(max_file_mb=1))


SMALL = ParseLimits(memory_mb=129)  # 1 MB above the workers' base: 43,690 characters of text


def test_text_longer_than_the_memory_cap_holds_is_refused_not_truncated(tmp_path: Path) -> None:
    assert SMALL.max_text_chars == 43_690
    path = tmp_path / "long"
    path.write_text("word " * (43_690 // 5) + "tail", encoding="utf-8")
    with pytest.raises(DocumentTooLargeError) as info:
        extract_text(path, "text/plain", SMALL)
    assert str(info.value) == (
        "long (text/plain): the text is longer than 43,690 characters, the most ingest.parse_memory_mb=129 can "
        "chunk; raise that setting or split the file"
    )
    path.write_text("word " * (43_690 // 5), encoding="utf-8")
    assert len(extract_text(path, "text/plain", SMALL)) == 43_689  # at the limit: kept whole


def test_text_above_the_ceiling_is_refused_whatever_the_memory_cap(tmp_path: Path) -> None:
    path = tmp_path / "book"
    path.write_bytes(b"0123456789 " * 1_818_182)  # 20,000,002 characters
    with pytest.raises(DocumentTooLargeError) as info:
        extract_text(path, "text/plain", ParseLimits(memory_mb=64_000, max_file_mb=64))
    assert str(info.value) == (
        "book (text/plain): the text is longer than 20,000,000 characters, the most one document may have; "
        "split the file"
    )


def test_pdf_and_workbook_stop_reading_at_the_limit_and_are_refused(tmp_path: Path) -> None:
    from loader_fixture_files import _pdf_page
    from pypdf import PdfWriter

    writer = PdfWriter()
    for page in range(12):
        _pdf_page(writer, f"Page {page} " + "lorem ipsum " * 400)
    pdf = tmp_path / "pdf"
    with pdf.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(DocumentTooLargeError, match=r"^pdf \(application/pdf\): the text is longer than 43,690 "):
        extract_text(pdf, "application/pdf", SMALL)
    workbook = openpyxl.Workbook()
    for row in range(2_000):
        workbook.active.append([f"row {row}", "lorem ipsum dolor sit amet"])
    xlsx = tmp_path / "xlsx"
    workbook.save(str(xlsx))
    with pytest.raises(DocumentTooLargeError, match=r"^xlsx \(" + XLSX + r"\): the text is longer than 43,690 "):
        extract_text(xlsx, XLSX, SMALL)


def test_pdf_without_text_layer_is_empty(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    path = tmp_path / "scan"
    with path.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(EmptyDocumentError, match="no text could be extracted"):
        extract_text(path, "application/pdf")


def test_every_error_is_a_loader_error() -> None:
    for cls in (CorruptDocumentError, DecompressionBombError, EmptyDocumentError, EncryptedDocumentError):
        assert issubclass(cls, LoaderError)
