"""Malformed files built from the loader fixtures' real documents: truncated, corrupted, encrypted, bombs, XML
entity tricks, pathological text. Everything is generated from a seed; nothing binary is committed."""

from __future__ import annotations

import functools
import io
import random
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from extract_msg.ole_writer import OleWriter
from loader_fixture_files import (
    write_docx,
    write_eml,
    write_epub,
    write_html,
    write_msg,
    write_ods,
    write_odt,
    write_pdf,
    write_pptx,
    write_rtf,
    write_xlsm,
    write_xlsx,
    write_xml,
)
from pypdf import PdfReader, PdfWriter

MIB = 1024 * 1024
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
EPUB = "application/epub+zip"
PDF = "application/pdf"
# zip-based formats -> (writer, the member that holds the text)
ZIPPED: dict[str, tuple[Callable[[Path], Path], str]] = {
    DOCX: (write_docx, "word/document.xml"),
    XLSX: (write_xlsx, "xl/worksheets/sheet1.xml"),
    XLSM: (write_xlsm, "xl/worksheets/sheet1.xml"),
    PPTX: (write_pptx, "ppt/slides/slide1.xml"),
    ODT: (write_odt, "content.xml"),
    ODS: (write_ods, "content.xml"),
    EPUB: (write_epub, "OEBPS/text/ch2.xhtml"),
}
OTHER_WRITERS: dict[str, Callable[[Path], Path]] = {
    PDF: write_pdf,
    "text/html": write_html,
    "application/xml": write_xml,
    "text/rtf": write_rtf,
    "message/rfc822": write_eml,
    "application/vnd.ms-outlook": write_msg,
}


@functools.cache
def real_file(mimetype: str) -> bytes:
    """A small valid document of this mimetype, written by the library users' files come from."""
    writer = ZIPPED[mimetype][0] if mimetype in ZIPPED else OTHER_WRITERS[mimetype]
    with tempfile.TemporaryDirectory() as scratch:
        return writer(Path(scratch)).read_bytes()


def truncated(data: bytes, fraction: float) -> bytes:
    return data[: max(1, int(len(data) * fraction))]


def flipped(data: bytes, rng: random.Random, count: int) -> bytes:
    """`count` random bytes XOR-ed with a random non-zero value."""
    out = bytearray(data)
    for _ in range(count):
        out[rng.randrange(len(out))] ^= rng.randrange(1, 256)
    return bytes(out)


def zeroed(data: bytes, rng: random.Random, length: int) -> bytes:
    start = rng.randrange(max(1, len(data) - length))
    return data[:start] + b"\x00" * length + data[start + length :]


def with_member(data: bytes, name: str, content: bytes) -> bytes:
    """The archive with member `name` replaced (or added)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename != name:
                dst.writestr(item, src.read(item))
        dst.writestr(name, content)
    return out.getvalue()


def _patch_headers(data: bytes, local: dict[int, bytes], central: dict[int, bytes]) -> bytes:
    """Overwrite fields of every local header (offset -> bytes) and central directory entry."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        offsets = [info.header_offset for info in archive.infolist()]
        position = archive.start_dir
    for offset in offsets:
        for field_at, value in local.items():
            out[offset + field_at : offset + field_at + len(value)] = value
    for _ in offsets:
        assert out[position : position + 4] == b"PK\x01\x02"
        for field_at, value in central.items():
            out[position + field_at : position + field_at + len(value)] = value
        name, extra, comment = struct.unpack("<HHH", out[position + 28 : position + 34])
        position += 46 + name + extra + comment
    return bytes(out)


def encrypted_flag(data: bytes) -> bytes:
    """Every member marked as traditionally encrypted (general purpose bit 0)."""
    return _patch_headers(data, {6: b"\x01\x00"}, {8: b"\x01\x00"})


def unknown_method(data: bytes) -> bytes:
    """Every member 'compressed' with method 99 (AES), which zipfile cannot read."""
    return _patch_headers(data, {8: b"\x63\x00"}, {10: b"\x63\x00"})


def ole_encrypted_package() -> bytes:
    """What Office saves for a password-protected OOXML file: an OLE2 container with an EncryptedPackage."""
    writer = OleWriter()
    writer.addEntry("EncryptionInfo", b"\x04\x00\x04\x00" + b"\x00" * 60)
    writer.addEntry("EncryptedPackage", random.Random(7).randbytes(4200))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "protected"
        writer.write(str(path))
        return path.read_bytes()


def ratio_bomb(data: bytes, megabytes: int) -> bytes:
    """The document with an added member of `megabytes` MiB of zeros (deflates ~1000x)."""
    return with_member(data, "media/padding.bin", b"\x00" * (megabytes * MIB))


def lying_sizes(data: bytes, megabytes: int) -> bytes:
    """A member of `megabytes` MiB of zeros whose headers declare 100 bytes: the ratio check cannot see it."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        dst.writestr("media/aaa.bin", b"\x00" * (megabytes * MIB))
        for item in src.infolist():
            dst.writestr(item, src.read(item))
    archive = bytearray(out.getvalue())
    # the first member: its local header is at 0, its central entry at start_dir
    with zipfile.ZipFile(io.BytesIO(bytes(archive))) as check:
        central = check.start_dir
    archive[22:26] = struct.pack("<I", 100)
    archive[central + 24 : central + 28] = struct.pack("<I", 100)
    return bytes(archive)


def many_members(count: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for n in range(count):
            archive.writestr(f"m/{n}", b"")
    return out.getvalue()


def overlapping_members(copies: int) -> bytes:
    """One deflated MiB of zeros listed `copies` times in the central directory (all entries share its data)."""
    packed = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = packed.compress(b"\x00" * MIB) + packed.flush()
    crc = zlib.crc32(b"\x00" * MIB)
    name = b"word/document.xml"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(body), MIB, len(name), 0)
    records = local + name + body
    central = b"".join(
        struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(body), MIB, len(name), 0, 0, 0, 0, 0, 0
        )
        + name
        for _ in range(copies)
    )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, copies, copies, len(central), len(records), 0)
    return records + central + end


BILLION_LAUGHS = (
    '<!DOCTYPE r [<!ENTITY a "lollollollollollollollollollol">'
    + "".join(f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">' for n in range(8))
    + "]>"
)
LAUGHS_REF = "&i;"
QUADRATIC = '<!DOCTYPE r [<!ENTITY big "' + "x" * 50_000 + '">]>'


def xxe(path: Path) -> str:
    return f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{path}">]>'


# a phrase each fixture's text member holds as a whole text node
_TEXT_NODE = {
    DOCX: "Meeting Minutes",
    XLSX: "Region",
    XLSM: "Region",
    PPTX: "Roadmap 2027",
    ODT: "Travel Report",
    ODS: "Part",
    EPUB: "Chapter One",
}


def entity_document(mimetype: str, doctype: str, reference: str) -> bytes:
    """The office file with its text member declaring `doctype` and `reference` where a text node was."""
    member = ZIPPED[mimetype][1]
    data = real_file(mimetype)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read(member).decode("utf-8")
    declaration, sep, body = xml.partition("?>")
    head = declaration + sep if sep else ""
    body = body if sep else xml
    phrase = _TEXT_NODE[mimetype]
    assert f">{phrase}<" in body, (mimetype, phrase)
    rewritten = head + doctype + body.replace(f">{phrase}<", f">{reference}<", 1)
    return with_member(data, member, rewritten.encode("utf-8"))


def xml_document(doctype: str, reference: str) -> bytes:
    return f'<?xml version="1.0"?>{doctype}<r><t>before {reference} after</t></r>'.encode()


def deep_xml(depth: int) -> bytes:
    return b"<?xml version='1.0'?>" + b"<a>" * depth + b"deep" + b"</a>" * depth


def deep_html(depth: int) -> bytes:
    return b"<html><body>" + b"<div>" * depth + b"deep" + b"</div>" * depth + b"</body></html>"


def encrypted_pdf(algorithm: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(real_file(PDF))))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def raw_pdf(*objects: bytes) -> bytes:
    """A PDF from numbered object bodies (1 0 obj is the catalog), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def cyclic_page_tree() -> bytes:
    return raw_pdf(b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>")


def _page_with_stream(stream: bytes, filters: bytes = b"") -> bytes:
    return raw_pdf(
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} {filters.decode()} >>\nstream\n".encode() + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    )


def flate_bomb_pdf(megabytes: int) -> bytes:
    """A page whose content stream inflates to `megabytes` MiB of spaces."""
    return _page_with_stream(zlib.compress(b" " * (megabytes * MIB), 9), b"/Filter /FlateDecode")


def huge_count_pdf() -> bytes:
    return raw_pdf(b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 2000000000 >>")


def text_operators_pdf(count: int) -> bytes:
    """A page with `count` tiny text-showing operators (the extractor's per-operator cost)."""
    return _page_with_stream(b"BT /F1 12 Tf " + b"(x) Tj " * count + b"ET")


def whitespace_run(char: str, size: int, around: tuple[str, str] = ("", "")) -> bytes:
    return (around[0] + char * (size // len(char.encode())) + around[1]).encode()


WORDS = [
    "harbour",
    "crane",
    "container",
    "ship",
    "quay",
    "berth",
    "cargo",
    "manifest",
    "customs",
    "pilot",
    "tug",
    "anchor",
    "bollard",
    "draught",
    "ballast",
    "hull",
    "keel",
    "bridge",
    "rudder",
    "propeller",
    "winch",
    "hatch",
    "deck",
    "gantry",
    "lashing",
    "reefer",
    "tariff",
    "invoice",
]


def words_line(rng: random.Random, size: int, separator: str = " ") -> bytes:
    """`size` bytes of random words joined by `separator`, without a line break."""
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + len(separator)
    return separator.join(out).encode()
