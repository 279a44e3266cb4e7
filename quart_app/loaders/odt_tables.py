"""An OpenDocument text's tables as one line per row, cells joined by " | " as the .docx and spreadsheet loaders join
them: odfdo formatted every cell as a paragraph of its own, so a chunk could hold a row's last cells without its
first ("30 / Paris" without "Alice")."""

from collections.abc import Iterator
from copy import deepcopy
from typing import Any

from .odt_hidden import remove_keeping_tail
from .odt_lists import int_attribute
from .tabular_loader import CELL_SEPARATOR, MAX_REPEAT

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_BLOCKS = (f"{_TEXT}p", f"{_TEXT}h")
_REPEAT = f"{_TABLE}number-columns-repeated"
# a tab or a line break inside a cell would cut its row's line: it reads as the space it stands for
_BREAKS = (f"{_TEXT}tab", f"{_TEXT}line-break")


def _blocks(element: Any) -> Iterator[Any]:
    """The outermost paragraphs and headings under `element`, in order (those of a section in a cell too, not those
    of a footnote's body inside one)."""
    for child in element:
        if child.tag in _BLOCKS:
            yield child
        else:
            yield from _blocks(child)


def _cell_content(cell: Any) -> str | Any:
    """The cell's text as a string where its paragraphs hold nothing but text (most cells: odfdo then formats one
    string, not an element per cell); else its paragraphs moved into one text:span, a space between them; "" for a cell
    without text."""
    blocks = list(_blocks(cell))
    if all(len(block) == 0 for block in blocks):
        return " ".join(text for block in blocks if (text := (block.text or "").strip()))
    if not "".join(cell.itertext()).strip():
        return ""
    span = cell.makeelement(f"{_TEXT}span")
    for block in blocks:
        for inline_break in list(block.iter(*_BREAKS)):
            inline_break.tail = " " + (inline_break.tail or "")
            remove_keeping_tail(inline_break)
        block.tag, block.tail = f"{_TEXT}span", None
        if len(span):
            span[-1].tail = " "
        span.append(block)
    return span


def _repeated(content: str | Any, times: int) -> list[str | Any]:
    """A cell's content as often as its cell is repeated (table:number-columns-repeated), at most MAX_REPEAT times as
    the .ods loader expands it; a blank one, filler, once."""
    if content == "" or times <= 1:
        return [content]
    count = min(times, MAX_REPEAT)
    return [content] * count if isinstance(content, str) else [content, *(deepcopy(content) for _ in range(count - 1))]


def _row_cells(row: Any) -> list[str | Any]:
    """The row's cells (a merged-over table:covered-table-cell is no cell of its own; a repeated one is as many cells,
    as LibreOffice shows it), without the empty ones at either end, as the .docx loader leaves them out."""
    cells: list[str | Any] = []
    for cell in row.iterchildren(f"{_TABLE}table-cell"):
        content = _cell_content(cell)
        # most cells are not repeated: they cost one attribute lookup
        if (repeat := cell.get(_REPEAT)) is None:
            cells.append(content)
        else:
            cells.extend(_repeated(content, int_attribute(repeat, 1)))
    while cells and cells[-1] == "":
        cells.pop()
    while cells and cells[0] == "":
        cells.pop(0)
    return cells


def _append(paragraph: Any, last: Any | None, content: str | Any) -> Any | None:
    """Append text (to the tail of `last`, the paragraph's last element, or to its text before any) or an element to the
    paragraph; returns its last element (kept by the caller: lxml counts a paragraph's children one by one)."""
    if not isinstance(content, str):
        paragraph.append(content)
        return content
    if last is None:
        paragraph.text = (paragraph.text or "") + content
    else:
        last.tail = (last.tail or "") + content
    return last


def tables_as_lines(body: Any) -> None:
    """Replace each table under `body` (an lxml element) with one paragraph holding a line per row (text:line-break
    between them); a table nested in a cell, made a paragraph first, reads as part of its cell."""
    for table in reversed(list(body.iter(f"{_TABLE}table"))):  # innermost first
        paragraph, last = table.makeelement(f"{_TEXT}p"), None
        # a nested table is a paragraph by now: the table's own rows are the only ones left under it
        rows = [cells for row in table.iter(f"{_TABLE}table-row") if (cells := _row_cells(row))]
        for number, cells in enumerate(rows):
            if number:
                last = _append(paragraph, last, paragraph.makeelement(f"{_TEXT}line-break"))
            for index, content in enumerate(cells):
                if index:
                    last = _append(paragraph, last, CELL_SEPARATOR)
                last = _append(paragraph, last, content)
        paragraph.tail = table.tail
        # emptied first: lxml moves a removed element's whole subtree to a new document (65 ms for 1000 rows)
        table.clear(keep_tail=True)
        table.getparent().replace(table, paragraph)
