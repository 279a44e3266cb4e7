"""An OpenDocument text's tables as one line per row, cells joined by " | " as the .docx and spreadsheet loaders join
them: odfdo formatted every cell as a paragraph of its own, so a chunk could hold a row's last cells without its
first ("30 / Paris" without "Alice")."""

from collections.abc import Iterator
from typing import Any

from .odt_hidden import remove_keeping_tail
from .tabular_loader import CELL_SEPARATOR

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_BLOCKS = (f"{_TEXT}p", f"{_TEXT}h")
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


def _cell_span(cell: Any) -> Any | None:
    """The cell's paragraphs moved into one text:span, a space between them; None for a cell without text."""
    if not "".join(cell.itertext()).strip():
        return None
    span = cell.makeelement(f"{_TEXT}span")
    for block in list(_blocks(cell)):
        for inline_break in list(block.iter(*_BREAKS)):
            inline_break.tail = " " + (inline_break.tail or "")
            remove_keeping_tail(inline_break)
        block.tag, block.tail = f"{_TEXT}span", None
        if len(span):
            span[-1].tail = " "
        span.append(block)
    return span


def _row_spans(row: Any) -> list[Any | None]:
    """The row's cells (a merged-over table:covered-table-cell is no cell of its own; a repeated one, blank filler in
    a text's tables, counts once), without the empty ones at either end, as the .docx loader leaves them out."""
    spans = [_cell_span(cell) for cell in row.iterchildren(f"{_TABLE}table-cell")]
    while spans and spans[-1] is None:
        spans.pop()
    while spans and spans[0] is None:
        spans.pop(0)
    return spans


def tables_as_lines(body: Any) -> None:
    """Replace each table under `body` (an lxml element) with one paragraph holding a line per row (text:line-break
    between them); a table nested in a cell, made a paragraph first, reads as part of its cell."""
    for table in reversed(list(body.iter(f"{_TABLE}table"))):  # innermost first
        paragraph = table.makeelement(f"{_TEXT}p")
        # a nested table is a paragraph by now: the table's own rows are the only ones left under it
        rows = [spans for row in table.iter(f"{_TABLE}table-row") if (spans := _row_spans(row))]
        for number, spans in enumerate(rows):
            if number:
                paragraph.append(paragraph.makeelement(f"{_TEXT}line-break"))
            for index, span in enumerate(spans):
                cell = paragraph.makeelement(f"{_TEXT}span") if span is None else span
                cell.tail = CELL_SEPARATOR if index < len(spans) - 1 else None
                paragraph.append(cell)
        paragraph.tail = table.tail
        table.getparent().replace(table, paragraph)
