"""Text of a DrawingML chart (PowerPoint, Word): titles, and each series' categories with the values cached in it."""

from collections.abc import Iterator
from typing import Any, NamedTuple

from lxml import etree

from .number_format import format_moment, format_number, is_date_code, serial_moment

_NS = {
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "c": "http://schemas.openxmlformats.org/drawingml/2006/chart",
}
_CHART_TITLES = etree.XPath("c:chart/c:title | c:chart/c:plotArea/*/c:title", namespaces=_NS)
_SERIES = etree.XPath("c:chart/c:plotArea/*/c:ser", namespaces=_NS)
_SERIES_NAME = etree.XPath("c:tx//c:v/text()", namespaces=_NS)
# category charts keep labels in c:cat and numbers in c:val, scatter and bubble charts in c:xVal and c:yVal
_CATEGORY_POINTS = etree.XPath("c:cat//c:pt | c:xVal//c:pt", namespaces=_NS)
# a multi-level axis ("2024" over "Q1".."Q4"): innermost level first, an outer label's idx is its first point's
_CATEGORY_LEVELS = etree.XPath("c:cat/c:multiLvlStrRef/c:multiLvlStrCache/c:lvl", namespaces=_NS)
_CATEGORY_FORMAT = etree.XPath("(c:cat | c:xVal)//c:formatCode/text()", namespaces=_NS)
# a date axis whose categories keep the General format still shows dates
_DATE_AXIS = etree.XPath("c:chart/c:plotArea/c:dateAx", namespaces=_NS)
_DATE_1904 = etree.XPath("c:date1904/@val", namespaces=_NS)
_VALUE_POINTS = etree.XPath("c:val//c:pt | c:yVal//c:pt", namespaces=_NS)
# a point's value by tag: findtext is cheaper than an XPath per point
_POINT_VALUE = f"{{{_NS['c']}}}v"
_VALUE_FORMAT = etree.XPath("(c:val | c:yVal)//c:formatCode/text()", namespaces=_NS)
_CELL_VALUES = etree.XPath(".//c:v/text()", namespaces=_NS)
_PARAGRAPHS = etree.XPath(".//a:p", namespaces=_NS)
_RUN_TEXTS = etree.XPath(".//a:t/text()", namespaces=_NS)
# a quarterly or monthly chart is read in full; a measured series of thousands of points would be pages of numbers
# that no question finds and that cost the embedder more than the rest of the deck
MAX_POINTS_PER_SERIES = 60


def paragraphs_text(element: Any, separator: str) -> str:
    """The DrawingML paragraphs under `element` (a chart title, a SmartArt point) that hold text, joined."""
    return separator.join(text for p in _PARAGRAPHS(element) if (text := "".join(_RUN_TEXTS(p))).strip())


def _number_text(value: str, format_code: str) -> str:
    """A cached chart number as the chart's labels show it under its format code (12.5%, 1,250,000); under General
    with float noise (0.30000000000000004) cut."""
    try:
        number = float(value)
    except ValueError:
        return value.strip()
    return format_number(number, format_code) or f"{number:.12g}"


def _level_labels(level: Any) -> dict[int, str]:
    return {int(point.get("idx", "0")): (point.findtext(_POINT_VALUE) or "").strip() for point in level}


class _DateAxis(NamedTuple):
    """How the chart's category serial numbers become dates."""

    date_axis: bool
    date1904: bool


def _category_text(value: str, format_code: str, dates: _DateAxis) -> str:
    """A category as the axis shows it: a date axis keeps dates as serial numbers (45292 is 1 January 2024)."""
    date_code = is_date_code(format_code)
    if not (date_code or (dates.date_axis and format_code.lower() in ("", "general"))):
        return value.strip()
    try:
        moment = serial_moment(float(value), dates.date1904)
    except ValueError:  # a text category on a date axis
        moment = None
    if moment is None:
        return value.strip()
    return (format_moment(moment, format_code) if date_code else None) or moment.date().isoformat()


def _category_names(series: Any, dates: _DateAxis) -> dict[str | None, str]:
    """Each point's category by its idx; on a multi-level axis the outer labels lead ("2024 Q3")."""
    levels = _CATEGORY_LEVELS(series)
    if not levels:
        format_code = "".join(_CATEGORY_FORMAT(series)[:1])
        return {
            point.get("idx"): _category_text(
                point.findtext(_POINT_VALUE) or "", point.get("formatCode") or format_code, dates
            )
            for point in _CATEGORY_POINTS(series)
        }
    outer_levels = [_level_labels(level) for level in reversed(levels[1:])]
    names: dict[str | None, str] = {}
    for idx, label in _level_labels(levels[0]).items():
        outer: list[str] = []
        for labels in outer_levels:
            starts = [start for start in labels if start <= idx]
            if starts:
                outer.append(labels[max(starts)])
        names[str(idx)] = " ".join(text for text in (*outer, label) if text)
    return names


def _series_line(series: Any, dates: _DateAxis) -> str:
    """'Series | category: value | ...' from the values Office caches with the chart (c:numCache)."""
    categories = _category_names(series, dates)
    format_code = "".join(_VALUE_FORMAT(series)[:1])
    parts = ["".join(_SERIES_NAME(series)).strip()]
    points = _VALUE_POINTS(series)
    for point in points[:MAX_POINTS_PER_SERIES]:
        value = _number_text(point.findtext(_POINT_VALUE) or "", point.get("formatCode") or format_code)
        category = categories.get(point.get("idx"), "")
        parts.append(f"{category}: {value}" if category else value)
    if len(points) > MAX_POINTS_PER_SERIES:
        parts.append(f"… {len(points) - MAX_POINTS_PER_SERIES} more points")
    return " | ".join(part for part in parts if part)


def chart_lines(chart_space: Any) -> Iterator[str]:
    """Chart and axis titles, then each series with its categories and values, from a chart part's c:chartSpace;
    read from the XML because python-pptx's plots raise NotImplementedError for stock, surface and bar-of-pie charts
    and python-docx does not read charts at all."""
    for title in _CHART_TITLES(chart_space):
        # a title linked to a cell has no rich text, only the cell's cached value
        text = paragraphs_text(title, " ").strip() or "".join(_CELL_VALUES(title)).strip()
        if text:
            yield text
    dates = _DateAxis(bool(_DATE_AXIS(chart_space)), "".join(_DATE_1904(chart_space)) in ("1", "true"))
    yield from dict.fromkeys(line for series in _SERIES(chart_space) if (line := _series_line(series, dates)))
