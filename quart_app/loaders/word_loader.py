"""Word-processing documents: .docx via python-docx, .odt via odfdo."""

from collections.abc import Iterable, Iterator
from pathlib import Path

import docx
import odfdo
from docx.table import Table
from docx.text.paragraph import Paragraph

from .limits import ParseLimits
from .zip_guard import check_zip

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"


def _table_lines(table: Table) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            # merged cells repeat the same object in python-docx; keep one copy
            if not cells or cells[-1] != text:
                cells.append(text)
        line = " | ".join(cells).strip(" |")
        if line:
            yield line


def _blocks(items: Iterable[Paragraph | Table]) -> Iterator[str]:
    for item in items:
        if isinstance(item, Paragraph):
            if item.text.strip():
                yield item.text
        else:
            yield "\n".join(_table_lines(item))


def load_docx(path: Path, limits: ParseLimits) -> str:
    """Body paragraphs and tables in document order, then headers and footers once each."""
    check_zip(path, DOCX, limits)
    document = docx.Document(str(path))
    blocks = list(_blocks(document.iter_inner_content()))
    seen: set[str] = set()
    for section in document.sections:
        for part in (section.header, section.footer):
            if part.is_linked_to_previous:
                continue
            text = "\n".join(_blocks(part.iter_inner_content())).strip()
            if text and text not in seen:
                seen.add(text)
                blocks.append(text)
    return "\n\n".join(block for block in blocks if block)


def load_odt(path: Path, limits: ParseLimits) -> str:
    """Formatted text of an OpenDocument text file (paragraphs, lists, tables)."""
    check_zip(path, ODT, limits)
    return str(odfdo.Document(str(path)).get_formatted_text())
