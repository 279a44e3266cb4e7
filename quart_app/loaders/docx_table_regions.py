"""Which conditional formats of a table style (w:tblStylePr, ECMA-376 17.7.6) a .docx table cell takes: by the table's
w:tblLook (header row, total row, first and last column, row and column banding), the cell's place and the style's
band sizes."""

from typing import Any, NamedTuple

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_TABLE = f"{_W}tbl"
_ROW = f"{_W}tr"
_CELL = f"{_W}tc"
_VAL = f"{_W}val"
# Word applies them in this order, each overriding the ones before (MS-OI29500 2.1.252 on ECMA-376 17.7.6.6, whose own
# list puts column banding before row banding and first rows before first columns: Word shows the header row's format
# in its first cell)
ORDER = (
    "wholeTable",
    "band1Horz",
    "band2Horz",
    "band1Vert",
    "band2Vert",
    "firstCol",
    "lastCol",
    "firstRow",
    "lastRow",
    "nwCell",
    "neCell",
    "swCell",
    "seCell",
)
# w:tblLook's w:val bits (the transitional form; the named attributes win where both are written)
_LOOK_BITS = {
    "firstRow": 0x20,
    "lastRow": 0x40,
    "firstColumn": 0x80,
    "lastColumn": 0x100,
    "noHBand": 0x200,
    "noVBand": 0x400,
}
_OFF = ("0", "false", "off")


class BandSizes(NamedTuple):
    """How many rows and columns a table style's bands span (w:tblStyleRowBandSize, w:tblStyleColBandSize)."""

    rows: int
    columns: int


def _look(table: Any) -> dict[str, bool]:
    """The table's w:tblLook flags; without one, banding on and the rest off (17.4.56)."""
    look = table.find(f"{_W}tblPr/{_W}tblLook")
    if look is None:
        return dict.fromkeys(_LOOK_BITS, False)
    try:
        bits = int(look.get(_VAL, "0"), 16)
    except ValueError:
        bits = 0
    flags = {}
    for name, bit in _LOOK_BITS.items():
        value = look.get(f"{_W}{name}")
        flags[name] = bool(bits & bit) if value is None else value not in _OFF
    return flags


def _own(container: Any, tag: str, parent_tag: str) -> list[Any]:
    """The rows of a table or the cells of a row, with those inside content controls, not those of a nested table."""
    return [element for element in container.iter(tag) if next(element.iterancestors(parent_tag)) is container]


def _number(element: Any, path: str, default: int) -> int:
    """A non-negative w:val (a grid span, a count of grid columns skipped); `default` where it is missing or wrong."""
    found = element.find(path)
    value = found.get(_VAL, "") if found is not None else ""
    return int(value) if value.isdigit() else default


class _RowLayout(NamedTuple):
    columns: dict[Any, int]  # each cell's first grid column
    first: Any
    last: Any


class TableRegions:
    """One table's rows and look, read once (each row's cells when first asked): the conditional formats each of its
    cells takes."""

    def __init__(self, table: Any, bands: BandSizes) -> None:
        rows = _own(table, _ROW, _TABLE)
        self._row_index = {row: index for index, row in enumerate(rows)}
        self._rows = len(rows)
        self._look = _look(table)
        self._bands = bands
        # the header row, and the rows right after it repeated as header rows on each page (w:tblHeader)
        headers = 1
        while headers < len(rows) and rows[headers].find(f"{_W}trPr/{_W}tblHeader") is not None:
            headers += 1
        self._header_rows = headers if self._look["firstRow"] else 0
        self._layouts: dict[Any, _RowLayout] = {}

    def _layout(self, row: Any) -> _RowLayout:
        if (layout := self._layouts.get(row)) is None:
            cells = _own(row, _CELL, _ROW)
            columns, column = {}, _number(row, f"{_W}trPr/{_W}gridBefore", 0)
            for cell in cells:
                columns[cell] = column
                column += _number(cell, f"{_W}tcPr/{_W}gridSpan", 1)
            layout = self._layouts[row] = _RowLayout(columns, cells[0], cells[-1])
        return layout

    def formats(self, cell: Any) -> list[str]:
        """The conditional formats the cell takes, in the order Word applies them."""
        row = next(cell.iterancestors(_ROW))
        index, layout, look = self._row_index.get(row, 0), self._layout(row), self._look
        first_row, last_row = index < self._header_rows, look["lastRow"] and index == self._rows - 1
        first_column = look["firstColumn"] and cell is layout.first
        last_column = look["lastColumn"] and cell is layout.last
        taken = {"wholeTable", "firstRow" if first_row else "", "lastRow" if last_row else ""}
        taken |= {"firstCol" if first_column else "", "lastCol" if last_column else ""}
        # banding counts from the first row after the header rows and the first column after a first column format
        if not look["noHBand"] and not first_row:
            band = (index - self._header_rows) // self._bands.rows
            taken.add("band1Horz" if band % 2 == 0 else "band2Horz")
        if not look["noVBand"] and not first_column:
            band = (layout.columns.get(cell, 0) - int(look["firstColumn"])) // self._bands.columns
            taken.add("band1Vert" if band % 2 == 0 else "band2Vert")
        # a corner cell takes the corner's format where both its row's and its column's formats apply
        corners = {"nwCell": first_row and first_column, "neCell": first_row and last_column}
        corners |= {"swCell": last_row and first_column, "seCell": last_row and last_column}
        taken |= {name for name, applies in corners.items() if applies}
        return [name for name in ORDER if name in taken]
