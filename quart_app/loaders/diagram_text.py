"""Text of a SmartArt diagram (PowerPoint, Word): the points of the data part its drawing names, in model order."""

from collections.abc import Iterator
from typing import Any

from lxml import etree

from .chart_text import paragraphs_text

_NS = {
    "dgm": "http://schemas.openxmlformats.org/drawingml/2006/diagram",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
}
# the drawing's reference to the diagram's data part (its layout, style and colour parts hold no text)
DIAGRAM_REFERENCE = f"{{{_NS['dgm']}}}relIds"
DATA_RELATIONSHIP_ID = f"{{{_NS['r']}}}dm"
_POINTS = etree.XPath("dgm:ptLst/dgm:pt", namespaces=_NS)
# presentation and connector points of a diagram hold layout, not the user's text
_LAYOUT_POINTS = frozenset({"pres", "parTrans", "sibTrans"})


def diagram_lines(data_model: Any) -> Iterator[str]:
    """The text of each point of a diagram's dgm:dataModel that holds text."""
    for point in _POINTS(data_model):
        if point.get("type") in _LAYOUT_POINTS:
            continue
        text = paragraphs_text(point, "\n")
        if text:
            yield text
