"""Chart categories on a date axis are indexed as the dates the axis shows, not as Excel serial numbers."""

import datetime
from pathlib import Path

from office_kit import deck_text, titled_slide
from pptx.chart.data import CategoryChartData
from pptx.enum.chart import XL_CHART_TYPE
from pptx.util import Inches

from quart_app.loaders.number_format import serial_moment


def test_date_categories_are_indexed_as_their_axis_shows_them(tmp_path: Path) -> None:
    # a date axis keeps its categories as serial numbers: "Units | 45292: 10" answered no question about January
    presentation, slide = titled_slide("Sales")
    for series, number_format in (("Units", r"mmm\ yy"), ("Returns", None), ("Visits", "General")):
        data = CategoryChartData()  # type: ignore[no-untyped-call]  # python-pptx's chart data has no type hints
        data.categories = [datetime.date(2024, month, 1) for month in (1, 2, 3)]
        if number_format is not None:  # None: python-pptx's default for dates, yyyy-mm-dd
            data.categories.number_format = number_format
        data.add_series(series, (10, 12, 15))  # type: ignore[no-untyped-call]
        slide.shapes.add_chart(XL_CHART_TYPE.LINE, Inches(1), Inches(1), Inches(6), Inches(4), data)
    assert deck_text(presentation, tmp_path / "sales") == (
        "Sales\n"
        "Units | Jan 24: 10 | Feb 24: 12 | Mar 24: 15\n"
        "Returns | 2024-01-01: 10 | 2024-02-01: 12 | 2024-03-01: 15\n"
        "Visits | 2024-01-01: 10 | 2024-02-01: 12 | 2024-03-01: 15"  # a date axis without a date format: ISO dates
    )


def test_serial_numbers_follow_excels_two_calendars() -> None:
    assert serial_moment(1) == datetime.datetime(1900, 1, 1)
    assert serial_moment(61) == datetime.datetime(1900, 3, 1)  # after Excel's 29 February 1900
    assert serial_moment(45292.75) == datetime.datetime(2024, 1, 1, 18)
    assert serial_moment(0, date1904=True) == datetime.datetime(1904, 1, 1)
    assert serial_moment(-1) is None
    assert serial_moment(3e6) is None
