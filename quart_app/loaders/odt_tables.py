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
_COLUMNS_REPEATED = f"{_TABLE}number-columns-repeated"
_ROWS_REPEATED = f"{_TABLE}number-rows-repeated"
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


def _length(content: str | Any) -> int:
    """About the characters a cell's content adds to the text (an element's as odfdo formats its text)."""
    return len(content) if isinstance(content, str) else len("".join(content.itertext()))


def _copies(content: str | Any, count: int) -> list[str | Any]:
    """`count` times the content: the string itself, or the element and deep copies of it."""
    return [content] * count if isinstance(content, str) else [content, *(deepcopy(content) for _ in range(count - 1))]


def _row_cells(row: Any) -> list[tuple[str | Any, int]]:
    """The row's cells, each with the number of cells it stands for (a merged-over table:covered-table-cell is no cell
    of its own; one with table:number-columns-repeated stands for that many, as LibreOffice shows it, at most
    MAX_REPEAT as the .ods loader expands it; a blank one, filler, for one), without the empty ones at either end, as
    the .docx loader leaves them out."""
    cells: list[tuple[str | Any, int]] = []
    for cell in row.iterchildren(f"{_TABLE}table-cell"):
        content = _cell_content(cell)
        # most cells are not repeated: they cost one attribute lookup
        repeat = cell.get(_COLUMNS_REPEATED)
        cells.append((content, 1 if repeat is None or content == "" else _capped(repeat)))
    while cells and cells[-1][0] == "":
        cells.pop()
    while cells and cells[0][0] == "":
        cells.pop(0)
    return cells


def _capped(repeat: str) -> int:
    """A table:number-*-repeated count, at most MAX_REPEAT (a crafted count must not multiply text without bound)."""
    return max(1, min(int_attribute(repeat, 1), MAX_REPEAT))


class TablesTooLongError(Exception):
    """The tables' lines would hold more characters than the document's text may have; the loader turns this into the
    limit's error."""


def _rows(table: Any, room: int) -> tuple[list[list[str | Any]], int]:
    """The table's rows as their cells' contents, each repeated row (table:number-rows-repeated) as often as it stands
    for, at most MAX_REPEAT, a blank one once; and the characters their lines hold. Raises TablesTooLongError before
    copying anything when those would be more than `room`."""
    counted: list[tuple[list[tuple[str | Any, int]], int]] = []
    length = 0
    # a nested table is a paragraph by now: the table's own rows are the only ones left under it
    for row in table.iter(f"{_TABLE}table-row"):
        if not (cells := _row_cells(row)):
            continue
        times = 1 if (repeat := row.get(_ROWS_REPEATED)) is None else _capped(repeat)
        line = sum((_length(content) + len(CELL_SEPARATOR)) * count for content, count in cells)
        # the budget is counted before any copy: 100 rows of 100 repeated big cells must not be built to be refused
        length += line * times
        if length > room:
            raise TablesTooLongError
        counted.append((cells, times))
    rows: list[list[str | Any]] = []
    for cells, times in counted:
        first: list[str | Any] = []
        for content, count in cells:
            # most cells are not repeated: no list of copies for them
            if count == 1:
                first.append(content)
            else:
                first.extend(_copies(content, count))
        rows.append(first)
        rows.extend([copy if isinstance(copy, str) else deepcopy(copy) for copy in first] for _ in range(times - 1))
    return rows, length


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


def tables_as_lines(body: Any, room: int) -> int:
    """Replace each table under `body` (an lxml element) with one paragraph holding a line per row (text:line-break
    between them); a table nested in a cell, made a paragraph first, reads as part of its cell. Returns the characters
    the lines hold; raises TablesTooLongError, before copying any repeated cell or row, when they would hold more than
    `room` (the characters the document's text may still have)."""
    used = 0
    for table in reversed(list(body.iter(f"{_TABLE}table"))):  # innermost first
        paragraph, last = table.makeelement(f"{_TEXT}p"), None
        rows, length = _rows(table, room - used)
        used += length
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
    return used
