"""Spreadsheet cells are indexed as the spreadsheet program shows them, not as the raw values the file stores."""

import datetime
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from openpyxl.chart import LineChart, Reference

from quart_app.loaders import extract_text
from quart_app.loaders.number_format import Moment, format_moment, format_number

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _part_changed(source: Path, part: str, change: Callable[[bytes], bytes]) -> Path:
    """A copy of the workbook with one part's bytes changed."""
    changed = source.with_name(f"{source.name}-changed")
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(changed, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, change(data) if item.filename == part else data)
    return changed


def test_xlsx_cells_are_indexed_as_their_number_formats_show_them(tmp_path: Path) -> None:
    # openpyxl hands out raw values: a 12.5% margin was indexed as 0.125, an invoice date as 2024-01-15T00:00:00,
    # and "what did we pay in March?" never met "€1,234.50"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Report"
    rows: list[tuple[str, object, str]] = [
        ("Margin", 0.125, "0.0%"),
        ("Growth", 0.07, "0%"),
        ("Invoice date", datetime.datetime(2024, 1, 15), "dd.mm.yyyy"),
        ("Short date", datetime.datetime(2024, 3, 1), "mm-dd-yy"),  # built-in 14: the reader's locale
        ("Meeting", datetime.datetime(2024, 3, 1, 14, 30), "d mmmm yyyy h:mm AM/PM"),
        ("Pi", 3.14159, "0.00"),
        ("Visitors", 1234567, "#,##0"),
        ("Paid", 1234.5, '"$"#,##0.00'),
        ("Rent", 980, "#,##0.00 [$€-407]"),
        ("Loss", -250, '"$"#,##0.00_);("$"#,##0.00)'),  # built-in 7: negatives in parentheses
        ("Measured", 12345.678, "0.00E+00"),  # scientific notation is not rendered: the value is kept
        ("Approved", True, "General"),
    ]
    for label, value, number_format in rows:
        sheet.append([label, value])
        sheet.cell(sheet.max_row, 2).number_format = number_format
    path = tmp_path / "report"
    workbook.save(str(path))
    assert extract_text(path, XLSX) == (
        "Report\nMargin | 12.5%\nGrowth | 7%\nInvoice date | 15.01.2024\nShort date | 2024-03-01\n"
        "Meeting | 1 March 2024 2:30 PM\nPi | 3.14\nVisitors | 1,234,567\nPaid | $1,234.50\nRent | 980.00 €\n"
        "Loss | ($250.00)\nMeasured | 12345.678\nApproved | TRUE"
    )


def test_a_style_naming_an_undefined_number_format_keeps_the_value(tmp_path: Path) -> None:
    # the format lookup raised IndexError for a style whose numFmtId no numFmt defines: the workbook was refused
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Ratio", 0.5])
    sheet["B1"].number_format = "0.0%"
    workbook.save(str(tmp_path / "ratios"))
    broken = _part_changed(
        tmp_path / "ratios", "xl/styles.xml", lambda xml: xml.replace(b'xf numFmtId="164"', b'xf numFmtId="170"')
    )
    assert extract_text(broken, XLSX) == "Sheet\nRatio | 0.5"


@pytest.mark.parametrize(
    ("number", "code", "shown"),
    [
        (1500000, '#,##0,"K"', "1,500K"),  # trailing commas scale by thousands
        (0, r'_(* #,##0.00_);_(* \(#,##0.00\);_(* "-"??_);_(@_)', "-"),  # accounting zero section
        (2.5, "0.0#", "2.5"),
        (2.567, "0.0#", "2.57"),
        (2.5, "0", "3"),  # halves away from zero, as Excel rounds
        (-2.5, "0", "-3"),
        (2.675, "0.00", "2.68"),  # the float's shortest decimal form, not its binary value 2.67499…
        (1e300, "#,##0", f"{1e300:,.0f}"),
        (0.5, "#.##", ".5"),
        (7, "000", "007"),
        (12, '"No. "General', "No. 12"),
        (1.5, "# ?/?", None),  # fractions
        (150, "[>=100]0;0", None),  # conditions
        (1.5, "General", None),
    ],
)
def test_number_codes(number: float, code: str, shown: str | None) -> None:
    assert format_number(number, code) == shown


@pytest.mark.parametrize(
    ("moment", "code", "shown"),
    [
        (datetime.datetime(2024, 1, 5, 14, 7, 9, 250000), "hh:mm:ss.00", "14:07:09.25"),
        (datetime.datetime(2024, 1, 5), "dddd, mmm d, yy", "Friday, Jan 5, 24"),
        (datetime.datetime(2024, 1, 5, 9, 5), "mm:ss", "05:00"),  # 'mm' before seconds is minutes
        (datetime.timedelta(hours=27, minutes=3), "[h]:mm", "27:03"),
        (datetime.time(13, 5), "h:mm AM/PM", "1:05 PM"),
        (datetime.time(13, 5), "yyyy-mm-dd", None),  # a time of day has no calendar date to show
        (datetime.datetime(2024, 1, 5), 'ggge"年"m"月"d"日"', None),  # a Japanese era
    ],
)
def test_date_codes(moment: Moment, code: str, shown: str | None) -> None:
    assert format_moment(moment, code) == shown


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("[$-407]dddd, d. mmmm yyyy", "Montag, 4. März 2024"),
        ("[$-807]d. mmm yy", "4. Mrz 24"),  # German (Switzerland)
        ("[$-40C]ddd d mmm yyyy", "lun. 4 mars 2024"),
        ("[$-C0A]dddd d \\d\\e mmmm", "lunes 4 de marzo"),  # Spanish, modern sort
        ("[$-410]mmmm yyyy", "marzo 2024"),
        ("[$-413]ddd d mmm", "ma 4 mrt"),
        ("[$-816]dddd, d mmmm", "segunda-feira, 4 março"),  # Portuguese (Portugal)
        ("[$-1010407]mmmm", "März"),  # a calendar in the high bits, German in the low ones
        ("[$-de-DE]mmmm", "März"),
        ("[$-411]mmmm", "March"),  # a language without names here: English
        ("[$-F800]dddd, mmmm d, yyyy", "Monday, March 4, 2024"),  # the system's long date: shown in English
        ("[$-407]mmmmm", "M"),  # the first letter of März
    ],
)
def test_date_codes_name_months_and_weekdays_in_their_locale(code: str, shown: str) -> None:
    # Excel shows a German workbook's "[$-407]mmmm" as "März": the index had "March", which a German question misses
    assert format_moment(datetime.datetime(2024, 3, 4), code) == shown


def test_xlsx_dates_show_the_month_names_of_their_locale(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Termine"
    sheet.append(["Abgabe", datetime.datetime(2024, 3, 4)])
    sheet["B1"].number_format = "[$-407]dddd, d. mmmm yyyy"
    sheet.append(["Échéance", datetime.datetime(2024, 2, 1)])
    sheet["B2"].number_format = "[$-40C]d mmmm yyyy"
    sheet.append(["Rent", 980])
    sheet["B3"].number_format = "#,##0.00 [$€-407]"
    path = tmp_path / "termine"
    workbook.save(str(path))
    assert extract_text(path, XLSX) == (
        "Termine\nAbgabe | Montag, 4. März 2024\nÉchéance | 1 février 2024\nRent | 980.00 €"
    )


def _sales_with_chart(path: Path) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Sales"
    for row in (("Month", "Units"), ("Jan", 10), ("Feb", 12)):
        sheet.append(row)
    chart = LineChart()
    chart.title = "Units per month"
    chart.y_axis.title = "Units sold"
    chart.add_data(Reference(sheet, min_col=2, min_row=1, max_row=3), titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=3))
    sheet.add_chart(chart, "D2")
    workbook.save(str(path))
    return path


def test_xlsx_chart_titles_are_indexed_after_the_sheets(tmp_path: Path) -> None:
    # openpyxl's read-only mode loads no charts: "Units per month" and its axis title were missing from the index
    path = _sales_with_chart(tmp_path / "sales")
    assert extract_text(path, XLSX) == "Sales\nMonth | Units\nJan | 10\nFeb | 12\n\nUnits per month\nUnits sold"


def test_a_damaged_xlsx_chart_loses_its_text_not_the_workbook(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    damaged = _part_changed(_sales_with_chart(tmp_path / "sales"), "xl/charts/chart1.xml", lambda xml: xml[:100])
    assert extract_text(damaged, XLSX) == "Sales\nMonth | Units\nJan | 10\nFeb | 12"
    assert "skipped the damaged chart 1 of 1: " in caplog.text


# a text box anchored on the sheet, as Excel writes it in the sheet's drawing next to the chart's frame
TEXT_BOX = (
    b'<oneCellAnchor><from><col>3</col><colOff>0</colOff><row>20</row><rowOff>0</rowOff></from><ext cx="100" cy="100"/>'
    b'<sp><nvSpPr><cNvPr id="2" name="TextBox 1"/><cNvSpPr txBox="1"/></nvSpPr><spPr/><txBody>'
    b'<a:bodyPr xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"/>'
    b'<a:p xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><a:r><a:t>Figures are provisional</a:t>'
    b"</a:r></a:p></txBody></sp><clientData/></oneCellAnchor></wsDr>"
)


def test_xlsx_text_boxes_are_indexed_before_the_charts(tmp_path: Path) -> None:
    # a dashboard's text boxes live in the sheet's drawing, which openpyxl's read-only mode does not load
    source = _sales_with_chart(tmp_path / "sales")
    path = _part_changed(source, "xl/drawings/drawing1.xml", lambda xml: xml.replace(b"</wsDr>", TEXT_BOX))
    assert extract_text(path, XLSX) == (
        "Sales\nMonth | Units\nJan | 10\nFeb | 12\n\nFigures are provisional\n\nUnits per month\nUnits sold"
    )
