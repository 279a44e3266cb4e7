"""Writers for one small document of every supported mimetype, built with the same libraries users' files come from.

Files are written without a suffix, like the ingest spool. `FIXTURES` maps mimetype -> (writer, phrases the
extracted text must contain, phrases it must not contain).

- .msg and .ppt: extract-msg ships an OLE2 writer (`extract_msg.ole_writer.OleWriter`); the .msg gets the MAPI
  property streams Outlook uses (subject 0x0037, body 0x1000, sender name 0x0C1A, display-to 0x0E04), the .ppt a
  'PowerPoint Document' stream of [MS-PPT] records (text atoms in a SlideListWithText, a text box in a slide
  drawing, and a master slide whose prompt text must be skipped).
- PDF: pypdf's writer with a hand-written content stream using the standard Helvetica font.
"""

import csv
import email.message
import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import odfdo
import openpyxl
import pptx
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from extract_msg.ole_writer import OleWriter
from pptx.util import Inches
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

GERMAN = "Grüße aus Köln: Die Straße ist schön, das Wetter ändert sich. Preis 20 € für Übergrößen."

Writer = Callable[[Path], Path]


def write_txt(d: Path) -> Path:
    path = d / "plain"
    path.write_text("First line of plain text.\n\n\n\n\nAfter many blank lines.\x00 NUL removed", encoding="utf-8")
    return path


def write_txt_cp1252(d: Path) -> Path:
    path = d / "latin"
    path.write_bytes(("\n".join([GERMAN] * 3) + "\n").encode("cp1252"))
    return path


def write_markdown(d: Path) -> Path:
    path = d / "markdown"
    path.write_text("# Project Title\n\nIntro paragraph.\n\n## Install\n\nRun `make install`.\n", encoding="utf-8")
    return path


def write_json(d: Path) -> Path:
    path = d / "json"
    path.write_text(json.dumps({"name": "Widget", "tags": ["blue", "small"], "price": 12.5}), encoding="utf-8")
    return path


def write_rst(d: Path) -> Path:
    path = d / "rst"
    path.write_text("Release Notes\n=============\n\n* Fixed the frobnicator.\n", encoding="utf-8")
    return path


def write_org(d: Path) -> Path:
    path = d / "org"
    path.write_text("* TODO Buy milk\n** Details\nFrom the corner shop.\n", encoding="utf-8")
    return path


def write_csv(d: Path) -> Path:
    path = d / "csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, delimiter=";")
        out.writerows([["city", "population"], ["Berlin", "3664088"], ["München", "1488202"]])
    return path


def write_html(d: Path) -> Path:
    path = d / "html"
    path.write_text(
        "<html><head><title>Team Page</title><style>p{color:red}</style></head><body>"
        "<h1>Our Team</h1><p>We build <b>search</b>\n tools.</p><script>var secret = 1;</script>"
        "<table><tr><td>Alice</td><td>Lead</td></tr></table></body></html>",
        encoding="utf-8",
    )
    return path


def write_xml(d: Path) -> Path:
    path = d / "xml"
    path.write_text(
        '<?xml version="1.0"?><catalog><book id="b1"><title>Dune</title><author>Frank Herbert</author></book>'
        "<book id='b2'><title>Emma</title></book></catalog>",
        encoding="utf-8",
    )
    return path


def write_rtf(d: Path) -> Path:
    path = d / "rtf"
    path.write_bytes(
        rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Arial;}}\f0\fs24 Hello RTF world \'e4\'f6\'fc\par "
        rb"Second {\b bold} paragraph\par}"
    )
    return path


def _pdf_page(writer: PdfWriter, text: str) -> None:
    page = writer.add_blank_page(612, 792)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    content = DecodedStreamObject()
    content.set_data(f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode("latin-1"))
    page[NameObject("/Contents")] = writer._add_object(content)


def write_pdf(d: Path, name: str = "pdf", password: str | None = None) -> Path:
    writer = PdfWriter()
    _pdf_page(writer, "Invoice number 4711")
    _pdf_page(writer, "Total amount due")
    if password is not None:
        writer.encrypt(user_password=password, owner_password="owner-" + password, algorithm="RC4-128")
    path = d / name
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def write_docx(d: Path) -> Path:
    document = docx.Document()
    document.add_heading("Meeting Minutes", level=1)
    document.add_paragraph("The committee approved the budget.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Item", "Cost"
    table.cell(1, 0).text, table.cell(1, 1).text = "Chairs", "300"
    # a VML text box, as older Word versions and the DrawingML fallback store it
    document.element.body.insert(
        -1,
        parse_xml(
            f'<w:p {nsdecls("w")} xmlns:v="urn:schemas-microsoft-com:vml">'
            "<w:r><w:pict><v:shape><v:textbox><w:txbxContent><w:p><w:r>"
            "<w:t>Boxed remark</w:t></w:r></w:p></w:txbxContent></v:textbox></v:shape></w:pict></w:r></w:p>"
        ),
    )
    document.sections[0].header.is_linked_to_previous = False
    document.sections[0].header.paragraphs[0].text = "Confidential header"
    path = d / "docx"
    document.save(str(path))
    return path


def write_pptx(d: Path) -> Path:
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    slide.shapes.title.text = "Roadmap 2027"
    slide.placeholders[1].text = "Ship the indexer"
    slide.notes_slide.notes_text_frame.text = "Mention the deadline"
    second = presentation.slides.add_slide(presentation.slide_layouts[5])
    second.shapes.title.text = "Costs"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    table.cell(0, 0).text, table.cell(0, 1).text = "Servers", "1200"
    path = d / "pptx"
    presentation.save(str(path))
    return path


def _workbook() -> openpyxl.Workbook:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Sales"
    sheet.append(["Region", "Revenue"])
    sheet.append(["North", 1500])
    sheet.append(["South", 2750.5])
    other = workbook.create_sheet("Staff")
    other.append(["Name", "Role"])
    other.append(["Jürgen", "Engineer"])
    return workbook


def write_xlsx(d: Path) -> Path:
    path = d / "xlsx"
    _workbook().save(str(path))
    return path


def write_xlsm(d: Path) -> Path:
    # openpyxl writes the same package; the macro-enabled content type is what makes it .xlsm
    buffer = io.BytesIO()
    _workbook().save(buffer)
    path = d / "xlsm"
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "[Content_Types].xml":
                data = data.replace(
                    b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                    b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
                )
            dst.writestr(item, data)
    return path


def write_ods(d: Path) -> Path:
    document = odfdo.Document("spreadsheet")
    body = document.body
    body.clear()
    table = odfdo.Table("Inventory")
    table.set_values([["Part", "Count"], ["Bolt", 40], ["Nut", 75]])
    body.append(table)
    path = d / "ods"
    document.save(str(path))
    return path


def write_odt(d: Path) -> Path:
    document = odfdo.Document("text")
    body = document.body
    body.clear()
    body.append(odfdo.Header(1, "Travel Report"))
    body.append(odfdo.Paragraph("We visited the harbour in Hamburg."))
    path = d / "odt"
    document.save(str(path))
    return path


def write_epub(d: Path) -> Path:
    path = d / "epub"
    chapter = (
        '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title>'
        "</head><body><h1>{title}</h1><p>{text}</p></body></html>"
    )
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>The Little Book</dc:title></metadata>'
        '<manifest><item id="c1" href="text/ch%201.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="c2" href="text/ch2.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="c2"/><itemref idref="c1"/></spine></package>'
    )
    container = (
        '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("OEBPS/content.opf", opf)
        archive.writestr("OEBPS/text/ch 1.xhtml", chapter.format(title="Chapter Two", text="The end."))
        archive.writestr("OEBPS/text/ch2.xhtml", chapter.format(title="Chapter One", text="It began at dawn."))
    return path


def write_eml(d: Path) -> Path:
    message = email.message.EmailMessage()
    message["Subject"] = "Lunch on Friday?"
    message["From"] = "Alice <alice@example.org>"
    message["To"] = "bob@example.org"
    message["Date"] = "Tue, 01 Dec 2026 09:00:00 +0000"
    message.set_content("Hi Bob,\nshall we try the new Café?\n", charset="iso-8859-1")
    message.add_alternative("<p>Hi Bob, <b>HTML</b> version</p>", subtype="html")
    message.add_attachment(b"attachment secret bytes", maintype="application", subtype="octet-stream")
    path = d / "eml"
    path.write_bytes(message.as_bytes())
    return path


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def write_msg(d: Path) -> Path:
    writer = OleWriter()
    writer.addEntry("__substg1.0_001A001F", _utf16("IPM.Note"))
    writer.addEntry("__substg1.0_0037001F", _utf16("Quarterly numbers"))
    writer.addEntry("__substg1.0_1000001F", _utf16("Hello Anna,\nthe numbers are in. Viele Grüße"))
    writer.addEntry("__substg1.0_0C1A001F", _utf16("Bob Sender"))
    writer.addEntry("__substg1.0_0E04001F", _utf16("Anna Receiver"))
    writer.addEntry("__properties_version1.0", b"\x00" * 32)
    writer.addEntry("__nameid_version1.0", storage=True)
    for stream in ("00020102", "00030102", "00040102"):
        writer.addEntry(f"__nameid_version1.0/__substg1.0_{stream}", b"")
    path = d / "msg"
    writer.write(str(path))
    return path


def ppt_record(rec_type: int, body: bytes, container: bool = False, instance: int = 0) -> bytes:
    """One [MS-PPT] record: its header (version 0xF for a container, instance, type, length), then `body`."""
    return struct.pack("<HHI", (instance << 4) | (0xF if container else 0), rec_type, len(body)) + body


def write_ppt(d: Path) -> Path:
    slide_text = (
        ppt_record(0x0F9F, struct.pack("<I", 0))
        + ppt_record(0x0FA8, b"Quarterly Results")
        + ppt_record(0x0F9F, struct.pack("<I", 1))
        + ppt_record(0x0FA0, _utf16("Umsatz gestiegen\rNächstes Jahr\x0bmehr"))
    )
    document = ppt_record(0x03E8, ppt_record(0x0FF0, slide_text, container=True), container=True)
    master = ppt_record(0x03F8, ppt_record(0x0FA0, _utf16("Click to edit Master title style")), container=True)
    textbox = ppt_record(0xF00D, ppt_record(0x0FA8, b"Textbox on slide one"), container=True)
    slide = ppt_record(0x03EE, ppt_record(0xF002, textbox, container=True), container=True)
    writer = OleWriter()
    writer.addEntry("PowerPoint Document", document + master + slide)
    writer.addEntry("Current User", b"\x00" * 20)
    path = d / "ppt"
    writer.write(str(path))
    return path


# mimetype -> (writer, phrases expected in the text, phrases that must not appear)
FIXTURES: dict[str, tuple[Writer, tuple[str, ...], tuple[str, ...]]] = {
    "text/plain": (write_txt, ("First line of plain text.\n\nAfter many blank lines. NUL removed",), ("\x00",)),
    "text/markdown": (write_markdown, ("# Project Title\n\nIntro paragraph.", "## Install"), ()),
    "application/json": (write_json, ('"name": "Widget"', '"tags": ["blue", "small"]'), ()),
    "text/x-rst": (write_rst, ("Release Notes\n=============", "* Fixed the frobnicator."), ()),
    "text/org": (write_org, ("* TODO Buy milk\n** Details\nFrom the corner shop.",), ()),
    "text/csv": (write_csv, ("city | population\nBerlin | 3664088\nMünchen | 1488202",), ()),
    "text/html": (write_html, ("Team Page", "Our Team", "We build search tools.", "Alice | Lead"), ("secret", "color")),
    "application/xml": (write_xml, ("Dune\nFrank Herbert\nEmma",), ("b1", "<title>")),
    "text/rtf": (write_rtf, ("Hello RTF world äöü", "Second bold paragraph"), ("fonttbl", "Arial")),
    "application/pdf": (write_pdf, ("Invoice number 4711\n\nTotal amount due",), ()),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
        write_docx,
        (
            "Meeting Minutes\n\nThe committee approved the budget.",
            "Item | Cost\nChairs | 300",
            "Boxed remark\n\nConfidential header",
        ),
        (),
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        write_pptx,
        ("Roadmap 2027\nShip the indexer\nSpeaker notes: Mention the deadline", "Costs\nServers | 1200"),
        (),
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (
        write_xlsx,
        ("Sales\nRegion | Revenue\nNorth | 1500\nSouth | 2750.5", "Staff\nName | Role\nJürgen | Engineer"),
        (),
    ),
    "application/vnd.ms-excel.sheet.macroEnabled.12": (write_xlsm, ("Sales\nRegion | Revenue\nNorth | 1500",), ()),
    "application/vnd.oasis.opendocument.spreadsheet": (
        write_ods,
        ("Inventory\nPart | Count\nBolt | 40\nNut | 75",),
        (),
    ),
    "application/vnd.oasis.opendocument.text": (write_odt, ("Travel Report", "We visited the harbour in Hamburg."), ()),
    "application/epub+zip": (
        write_epub,
        # chapter headings marked as Markdown headings, for the chunker's heading paths
        ("The Little Book\n\n# Chapter One\n\nIt began at dawn.\n\n# Chapter Two\n\nThe end.",),
        ("<p>",),
    ),
    "message/rfc822": (
        write_eml,
        ("Subject: Lunch on Friday?", "From: Alice <alice@example.org>", "shall we try the new Café?"),
        ("HTML version", "attachment secret"),
    ),
    "application/vnd.ms-outlook": (
        write_msg,
        ("Subject: Quarterly numbers", "From: Bob Sender", "To: Anna Receiver", "the numbers are in. Viele Grüße"),
        (),
    ),
    "application/vnd.ms-powerpoint": (
        write_ppt,
        ("Quarterly Results\n\nUmsatz gestiegen\nNächstes Jahr\nmehr", "Textbox on slide one"),
        ("Click to edit Master",),
    ),
}
