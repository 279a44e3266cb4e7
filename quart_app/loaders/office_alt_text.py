"""A drawing's alt text, as a screen reader says it, and where it stands among the words around it (in an Office Open
XML file or an OpenDocument one). In Office Open XML: the title and description of a drawing's non-visual properties
(Word's wp:docPr, PowerPoint's p:cNvPr), for a picture, a chart or a shape; a VML shape's are read by docx_alt_text.
Left out: a drawing marked decorative, and the descriptions Office generates itself, recognised by the line it ends them
with ("Description automatically generated", "Description generated with high confidence", "AI-generated content may
be incorrect."; Word's in German, French, Spanish, Italian, Dutch and Portuguese too: "Automatisch generierte
Beschreibung", ...), a description that is only the picture's file name, and, where the loader says what the shape
shows itself, a title or description equal to it (PowerPoint copies a text box's text into its description)."""

import re
from typing import Any

_DECORATIVE = "{http://schemas.microsoft.com/office/drawing/2017/decorative}decorative"
_CONFIDENCE = r"(?:very high|high|medium|low) confidence"
# the notice Office ends a description it generated with, in the document's UI language, one line per language
_GENERATED_NOTICES = (
    rf"description (?:automatically generated(?: with {_CONFIDENCE})?|generated with {_CONFIDENCE})",  # English
    "ai-generated content may be incorrect",  # English (Microsoft 365)
    "automatisch generierte beschreibung",  # German
    "description générée automatiquement",  # French
    "descripción generada automáticamente",  # Spanish
    "descrizione generata automaticamente",  # Italian
    "automatisch gegenereerde beschrijving",  # Dutch
    "descrição gerada automaticamente",  # Portuguese
)
# Office writes the caption it guessed, a blank line and its notice ("A picture containing text\n\nDescription
# automatically generated"); a converter may have joined the lines with a space or ", " ("Diagram, description ...")
_GENERATED = re.compile(rf"(?:^|[\s,])(?:{'|'.join(_GENERATED_NOTICES)})\.?$", re.IGNORECASE)
# older Office versions saved the inserted file's path as the description, python-pptx saves its name ("image.png"): a
# name or a path, not words about the picture; up to the first separator only: `.*[\\/]` tried every separator of a
# long description, each with a scan to its end
_FILE_NAME = re.compile(
    r"(?:[^\s\\/]+|[^\\/]*[\\/].*)\.(?:png|jpe?g|gif|bmp|tiff?|emf|wmf|svg|webp|heic)", re.IGNORECASE
)


def spaced(before: str, text: str, after: str) -> str:
    """An alt text set apart from the words around it where it stands: a space before it unless the text `before` it
    ends in whitespace, a space after it when the text `after` it starts with a letter or digit ("See the map Site map
    of the site.", "Total Sales by region, then ...")."""
    space_before = " " if before and not before[-1].isspace() else ""
    space_after = " " if after[:1].isalnum() else ""
    return f"{space_before}{text}{space_after}"


def _is_decorative(properties: Any) -> bool:
    """Marked decorative in the Alt Text pane (adec:decorative in the properties' extension list)."""
    return any(mark.get("val") in ("1", "true") for mark in properties.iter(_DECORATIVE))


def described(title: str, description: str, shown: str = "") -> str:
    """A title and a description as one line ("Site map: The harbour"; a description equal to the title once), without
    a description Office generated or a file name, nor a part equal to the text the drawing `shown` itself (whitespace
    aside): it would be read twice."""
    title, description, shown = (" ".join(text.split()) for text in (title, description, shown))
    if _GENERATED.search(description) or _FILE_NAME.fullmatch(description):
        description = ""
    return ": ".join(dict.fromkeys(part for part in (title, description) if part and part != shown))


def alt_text(properties: Any, shown: str = "") -> str:
    """The drawing's title and description, one line, less what it has `shown` itself; "" for a drawing marked
    decorative."""
    title, description = properties.get("title", ""), properties.get("descr", "")
    if not (title or description) or _is_decorative(properties):
        return ""
    return described(title, description, shown)
