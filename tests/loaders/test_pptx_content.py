"""PowerPoint shapes python-pptx reads partly or not at all: shapes without geometry, equations, charts, SmartArt, the
shapes' alt text."""

import io
from pathlib import Path
from typing import Any

import pptx
from office_kit import (
    PIXEL,
    SMARTART_DATA,
    chart_data,
    deck_text,
    equation_text_box,
    titled_slide,
)
from pptx.chart.data import CategoryChartData, XyChartData
from pptx.enum.chart import XL_CHART_TYPE
from pptx.enum.shapes import PP_PLACEHOLDER
from pptx.opc.constants import CONTENT_TYPE as CT
from pptx.opc.constants import RELATIONSHIP_TYPE as RT
from pptx.opc.package import Part
from pptx.opc.packuri import PackURI
from pptx.oxml import parse_xml as parse_pptx_xml
from pptx.util import Inches

from quart_app.loaders.chart_text import MAX_POINTS_PER_SERIES


def test_pptx_shape_without_geometry_does_not_refuse_the_presentation(tmp_path: Path) -> None:
    # Google Slides, LibreOffice and Keynote write text shapes without geometry; python-pptx's shape_type raises
    # NotImplementedError for them, and the whole presentation was refused as damaged
    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[6])
    box = slide.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1))
    box.text_frame.text = "Quarterly goals"
    shape = box._element
    shape.spPr.remove(shape.spPr.prstGeom)
    del shape.nvSpPr.cNvSpPr.attrib["txBox"]
    group = slide.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(3), Inches(4), Inches(1)).text_frame.text = "Grouped note"
    text = deck_text(presentation, tmp_path / "bare")
    assert text == "Quarterly goals\nGrouped note"


def _add_smartart(presentation: pptx.presentation.Presentation, slide: pptx.slide.Slide) -> None:
    """A SmartArt frame and its data part, as PowerPoint writes them (python-pptx cannot create diagrams)."""
    data_part = Part(
        PackURI("/ppt/diagrams/data1.xml"), CT.DML_DIAGRAM_DATA, presentation.part.package, SMARTART_DATA.encode()
    )
    rel_id = slide.part.relate_to(data_part, RT.DIAGRAM_DATA)
    slide.shapes._spTree.append(
        parse_pptx_xml(
            '<p:graphicFrame xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" '
            'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<p:nvGraphicFramePr><p:cNvPr id="9" name="Diagram 1"/><p:cNvGraphicFramePr/><p:nvPr/></p:nvGraphicFramePr>'
            '<p:xfrm><a:off x="0" y="0"/><a:ext cx="100" cy="100"/></p:xfrm>'
            '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/diagram">'
            '<dgm:relIds xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram" '
            f'r:dm="{rel_id}" r:lo="" r:qs="" r:cs=""/></a:graphicData></a:graphic></p:graphicFrame>'
        )
    )


def test_pptx_text_box_holding_an_equation_is_indexed(tmp_path: Path) -> None:
    # PowerPoint wraps a shape that holds an equation in mc:AlternateContent and python-pptx's slide.shapes skips
    # it: the whole text box (or table, or title) around the formula was missing from the index
    presentation, slide = titled_slide("Relativity")
    slide.shapes._spTree.append(parse_pptx_xml(equation_text_box("Rest energy is ", " for a body at rest")))
    group = slide.shapes.add_group_shape()
    group.shapes._spTree.append(parse_pptx_xml(equation_text_box("Grouped: ", " again")))
    slide.shapes.add_textbox(Inches(1), Inches(5), Inches(4), Inches(1)).text_frame.text = "Questions?"
    text = deck_text(presentation, tmp_path / "physics")
    assert text == "Relativity\nRest energy is E=mc for a body at rest\nGrouped: E=mc again\nQuestions?"


def test_pptx_chart_labels_and_smartart_text_are_indexed(tmp_path: Path) -> None:
    # python-pptx's shapes give charts and SmartArt no text frame: a slide whose content is a chart or a process
    # diagram was indexed as its title alone
    presentation, slide = titled_slide("Results")
    visitors = chart_data(["Spring", "Autumn"], {"Hamburg office": (10, 20), "Munich office": (5, 7)})
    chart = slide.shapes.add_chart(
        XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(1), Inches(6), Inches(4), visitors
    ).chart
    chart.has_title = True
    chart.chart_title.text_frame.text = "Visitors per season"
    chart.value_axis.has_title = True
    chart.value_axis.axis_title.text_frame.text = "Visitors (thousands)"
    commute = chart_data(["Trains", "Cars"], {"Commute": (60, 40)})
    slide.shapes.add_chart(XL_CHART_TYPE.PIE, Inches(1), Inches(5), Inches(3), Inches(2), commute)
    _add_smartart(presentation, slide)
    text = deck_text(presentation, tmp_path / "results")
    assert text == (
        "Results\nVisitors per season\nVisitors (thousands)\nHamburg office | Spring: 10 | Autumn: 20\n"
        "Munich office | Spring: 5 | Autumn: 7\nCommute | Trains: 60 | Cars: 40\n"
        "Plan the rollout\nTrain the support team"
    )


def test_pptx_chart_numbers_are_indexed_with_their_categories(tmp_path: Path) -> None:
    # only titles and labels were indexed: "what was the revenue in Q3 2024?" over a deck whose chart holds the
    # figure found the slide but not the number
    presentation, slide = titled_slide("Results")
    revenue = CategoryChartData(number_format="#,##0")  # type: ignore[no-untyped-call]
    for year in ("2023", "2024"):
        quarters = revenue.add_category(year)  # type: ignore[no-untyped-call]
        for quarter in ("Q3", "Q4"):
            quarters.add_sub_category(quarter)
    revenue.add_series("Revenue (EUR)", (980000, 1100000, 1250000, 1312500.5))  # type: ignore[no-untyped-call]
    margin = CategoryChartData(number_format="0.0%")  # type: ignore[no-untyped-call]
    margin.categories = ["Q3", "Q4"]
    margin.add_series("Margin", (0.1 + 0.025, 0.3333))  # type: ignore[no-untyped-call]
    scatter = XyChartData()  # type: ignore[no-untyped-call]
    points = scatter.add_series("Load test")  # type: ignore[no-untyped-call]
    points.add_data_point(100, 0.25)
    points.add_data_point(200, 0.75)
    for chart_type, data in (
        (XL_CHART_TYPE.COLUMN_CLUSTERED, revenue),
        (XL_CHART_TYPE.LINE, margin),
        (XL_CHART_TYPE.XY_SCATTER, scatter),
    ):
        slide.shapes.add_chart(chart_type, Inches(1), Inches(1), Inches(6), Inches(4), data)
    text = deck_text(presentation, tmp_path / "results")
    assert text == (
        "Results\n"
        "Revenue (EUR) | 2023 Q3: 980,000 | 2023 Q4: 1,100,000 | 2024 Q3: 1,250,000 | 2024 Q4: 1,312,501\n"
        "Margin | Q3: 12.5% | Q4: 33.3%\n"
        "Load test | 100: 0.25 | 200: 0.75"
    )


def test_a_long_chart_series_is_indexed_up_to_its_first_points(tmp_path: Path) -> None:
    # a sensor log of 2,000 readings charted on one slide became pages of numbers for the embedder
    presentation, slide = titled_slide("Temperature log")
    readings = chart_data([f"t{i}" for i in range(2000)], {"Sensor A": tuple(float(i % 40) for i in range(2000))})
    slide.shapes.add_chart(XL_CHART_TYPE.LINE, Inches(1), Inches(1), Inches(6), Inches(4), readings)
    text = deck_text(presentation, tmp_path / "log")
    series_line = text.splitlines()[-1]
    kept = [f"t{i}: {i % 40}" for i in range(MAX_POINTS_PER_SERIES)]
    assert series_line == " | ".join(["Sensor A", *kept, f"… {2000 - MAX_POINTS_PER_SERIES} more points"])


def _described(shape: Any, title: str = "", description: str = "", decorative: bool = False) -> Any:
    """The shape with the alt text PowerPoint's Alt Text pane saves in its p:cNvPr (python-pptx writes a picture's file
    name as its description: it is replaced)."""
    properties = shape._element[0][0]
    for name, value in (("title", title), ("descr", description)):
        properties.set(name, value)
    if decorative:
        properties.append(
            parse_pptx_xml(
                '<a:extLst xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
                '<a:ext uri="{C183D7F6-B498-43B3-948B-1728B52AA6E4}">'
                '<adec:decorative xmlns:adec="http://schemas.microsoft.com/office/drawing/2017/decorative" val="1"/>'
                "</a:ext></a:extLst>"
            )
        )
    return shape


def test_pptx_a_shape_s_alt_text_is_indexed_where_it_stands(tmp_path: Path) -> None:
    # python-pptx gives a picture no text: a slide showing a map or a photo was indexed without what its alt text says
    presentation, slide = titled_slide("Site visit")
    shapes = slide.shapes
    shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1)).text_frame.text = "We met at the harbour."
    _described(shapes.add_picture(io.BytesIO(PIXEL), 0, 0), title="Site map", description="The harbour\n  and the quay")
    shapes.add_textbox(Inches(1), Inches(3), Inches(4), Inches(1)).text_frame.text = "Then the warehouses."
    # a chart's alt text, then its series
    trucks = chart_data(["Monday"], {"Trucks": (12,)})
    _described(shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, 0, 0, 1, 1, trucks), description="Trucks per day")
    # a group's and its picture's
    group = _described(shapes.add_group_shape(), title="Team photo")
    _described(group.shapes.add_picture(io.BytesIO(PIXEL), 0, 0), description="Ada and Grace at the gate")
    # PowerPoint's own descriptions (a guessed caption, a blank line, its notice) are no one's words; a title beside
    # one is kept; a picture marked decorative, or without alt text, has nothing to read
    _described(
        shapes.add_picture(io.BytesIO(PIXEL), 0, 0),
        description="A picture containing sky, outdoor\n\nDescription automatically generated",
    )
    _described(
        shapes.add_picture(io.BytesIO(PIXEL), 0, 0),
        title="Gate",
        description="A close up of a gate\n\nAI-generated content may be incorrect.",
    )
    _described(shapes.add_picture(io.BytesIO(PIXEL), 0, 0), description="Blue swirl", decorative=True)
    _described(shapes.add_picture(io.BytesIO(PIXEL), 0, 0))
    assert deck_text(presentation, tmp_path / "visit") == (
        "Site visit\nWe met at the harbour.\nSite map: The harbour and the quay\nThen the warehouses.\n"
        "Trucks per day\nTrucks | Monday: 12\nTeam photo\nAda and Grace at the gate\nGate"
    )


def test_a_picture_s_file_name_is_not_read_as_its_alt_text(tmp_path: Path) -> None:
    # python-pptx saves a picture's file name as its description ("image.png"), older Office versions the inserted
    # file's path: each picture of such a deck added a file name to the index
    presentation, slide = titled_slide("Harbour")
    slide.shapes.add_picture(io.BytesIO(PIXEL), 0, 0)
    _described(slide.shapes.add_picture(io.BytesIO(PIXEL), 0, 0), description="C:\\Users\\ada\\My Pictures\\quay.JPG")
    _described(slide.shapes.add_picture(io.BytesIO(PIXEL), 0, 0), title="Quay", description="quay-2024.jpeg")
    _described(slide.shapes.add_picture(io.BytesIO(PIXEL), 0, 0), description="Plan.png of the new quay")
    assert deck_text(presentation, tmp_path / "harbour") == "Harbour\nQuay\nPlan.png of the new quay"


def test_a_text_box_s_alt_text_equal_to_its_text_is_read_once(tmp_path: Path) -> None:
    # PowerPoint copies a text box's text into its description: every such box was indexed twice, its alt text first
    presentation, slide = titled_slide("Agenda")
    boxes = [slide.shapes.add_textbox(Inches(1), Inches(1 + i), Inches(4), Inches(1)) for i in range(3)]
    for box, text in zip(boxes, ("Budget review\nHiring plan", "Office move", "Q&A"), strict=True):
        box.text_frame.text = text
    # the same text, but for the whitespace; a title beside it is kept, as is a description that adds something
    _described(boxes[0], description="Budget review\r\n  Hiring plan")
    _described(boxes[1], title="Logistics", description="Office move")
    _described(boxes[2], description="Questions from the floor")
    assert deck_text(presentation, tmp_path / "agenda") == (
        "Agenda\nBudget review\nHiring plan\nLogistics\nOffice move\nQuestions from the floor\nQ&A"
    )


def _notes_picture(slide: Any, title: str = "", description: str = "", hidden: bool = False) -> None:
    """A picture on the slide's notes page, with alt text (python-pptx adds no pictures to notes pages: one added to the
    slide moves there, its image related to the notes page)."""
    picture = _described(slide.shapes.add_picture(io.BytesIO(PIXEL), 0, 0), title, description)
    notes = slide.notes_slide
    blip = picture._element.blipFill.blip
    blip.rEmbed = notes.part.relate_to(slide.part.related_part(blip.rEmbed), RT.IMAGE)
    if hidden:
        picture._element[0][0].set("hidden", "1")
    notes.shapes._spTree.append(picture._element)


def test_pictures_on_a_notes_page_read_their_alt_text_as_on_a_slide(tmp_path: Path) -> None:
    # only the notes placeholder's text was read: a picture the speaker put on the notes page was left without its alt
    # text, which a picture on the slide has
    presentation, slide = titled_slide("Roadmap")
    slide.notes_slide.notes_text_frame.text = "Mention the deadline."
    _notes_picture(slide, title="Gantt chart", description="Three milestones, the last in May")
    # the slide rules: a file name, a hidden picture and PowerPoint's own caption have nothing to read
    _notes_picture(slide, description="gantt.png")
    _notes_picture(slide, description="Salaries per person", hidden=True)
    _notes_picture(slide, description="A chart of a timeline\n\nDescription automatically generated")
    # the page's furniture is not the speaker's: its slide number is not read
    (number,) = (
        shape for shape in slide.notes_slide.placeholders if shape.element.ph_type == PP_PLACEHOLDER.SLIDE_NUMBER
    )
    number.text_frame.text = "1"
    assert deck_text(presentation, tmp_path / "roadmap") == (
        "Roadmap\nSpeaker notes: Mention the deadline.\nGantt chart: Three milestones, the last in May"
    )
