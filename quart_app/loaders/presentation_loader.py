"""Presentations: .pptx via python-pptx, legacy binary .ppt via olefile and the PowerPoint record format."""

import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import olefile
import pptx
from lxml import etree
from pptx.oxml import parse_xml
from pptx.shapes.graphfrm import GraphicFrame
from pptx.shapes.group import GroupShape
from pptx.shapes.shapetree import BaseShapeFactory

from .chart_text import chart_lines
from .diagram_text import DATA_RELATIONSHIP_ID, DIAGRAM_REFERENCE, diagram_lines
from .errors import CorruptDocumentError, EncryptedDocumentError
from .limits import ParseLimits
from .math_text import math_text
from .office_alt_text import alt_text
from .ppt_slides import (
    NOTES,
    SHAPE,
    SHAPE_GROUP,
    SLIDE,
    SLIDE_LIST,
    SLIDE_PERSIST,
    hidden_slide_persist_ids,
    is_hidden_shape,
    is_hidden_slide,
    may_hide_shapes,
    notes_slide_id,
    outline_text_indices,
    persist_offsets,
)
from .zip_guard import check_zip

PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
PPT = "application/vnd.ms-powerpoint"

# [MS-PPT] record types
_TEXT_CHARS_ATOM = 0x0FA0  # UTF-16LE text
_TEXT_BYTES_ATOM = 0x0FA8  # low bytes of UTF-16 code points (latin-1)
_TEXT_HEADER = 0x0F9F  # starts each of a slide's texts in the slide list
_MAIN_MASTER = 0x03F8  # master slides: placeholder prompts like "Click to edit Master title style"
_CRYPT_SESSION = 0x2F14  # CryptSession10Container: the document is encrypted
_CONTAINER_VERSION = 0xF
_NS = {"mc": "http://schemas.openxmlformats.org/markup-compatibility/2006"}
_ALTERNATE_CONTENT = f"{{{_NS['mc']}}}AlternateContent"
_FIRST_CHOICE_SHAPES = etree.XPath("mc:Choice[1]/*", namespaces=_NS)
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
# a shape's non-visual properties (name, title, description, hidden), in the p:nvSpPr, p:nvPicPr ... it starts with,
# where they hide the shape or hold alt text: one XPath call, no element proxies for the many shapes with neither
_MARKED = etree.XPath(
    "*[1]/p:cNvPr[@hidden or @title or @descr]",
    namespaces={"p": "http://schemas.openxmlformats.org/presentationml/2006/main"},
)
# an equation inside a paragraph (python-pptx's paragraph text reads only runs, fields and line breaks)
_EQUATION = "{http://schemas.microsoft.com/office/drawing/2010/main}m"
_PARAGRAPH_CONTENT = (f"{_A}r", f"{_A}br", f"{_A}fld", _EQUATION)
# a notes page's furniture: the slide's image, its number, the header, footer and date placeholders (one XPath call:
# python-pptx's is_placeholder and placeholder type cost more than reading the notes)
_NOTES_PAGE_FURNITURE = etree.XPath(
    "boolean(*[1]/p:nvPr/p:ph[@type='sldImg' or @type='sldNum' or @type='hdr' or @type='ftr' or @type='dt'])",
    namespaces={"p": "http://schemas.openxmlformats.org/presentationml/2006/main"},
)
_CONTROL = re.compile(r"[\x00-\x08\x0c\x0e-\x1f]")


def _smartart_text(frame: GraphicFrame) -> str:
    """The text of a SmartArt diagram's points, from its data part (python-pptx does not read diagrams)."""
    return "\n".join(
        text
        for reference in frame.element.iter(DIAGRAM_REFERENCE)
        for text in diagram_lines(parse_xml(frame.part.related_part(reference.get(DATA_RELATIONSHIP_ID, "")).blob))
    )


def _frame_text(text_frame: Any) -> str:
    """A text frame's paragraphs, one a line, equations included as linear text ("E=mc^2")."""
    return "\n".join(
        "".join(math_text(item) if item.tag == _EQUATION else item.text for item in p.iterchildren(*_PARAGRAPH_CONTENT))
        for p in text_frame._txBody.p_lst
    ).strip()


def _with_alternate_content(shapes: Any) -> Iterator[Any]:
    """The shapes in document order, with those PowerPoint wraps in mc:AlternateContent, which python-pptx skips: a
    text box, title or table holding an equation lost all its text. The first choice is the shape PowerPoint shows."""
    listed = iter(shapes)
    pending = next(listed, None)
    for element in shapes.element.iterchildren():
        if element.tag == _ALTERNATE_CONTENT:
            yield from (BaseShapeFactory(choice, shapes) for choice in _FIRST_CHOICE_SHAPES(element))
        # lxml hands out one proxy per node while it is alive, so identity finds python-pptx's next shape
        elif pending is not None and element is pending.element:
            yield pending
            pending = next(listed, None)


def _own_texts(shape: Any) -> Iterator[str]:
    """What the shape shows itself: a group's shapes, a chart's, diagram's, table's or text frame's text."""
    # not shape.shape_type: it raises for a shape without geometry (Google Slides, LibreOffice, Keynote exports)
    if isinstance(shape, GroupShape):
        yield from _shape_texts(shape.shapes)
    elif getattr(shape, "has_chart", False) and shape.has_chart:
        yield from chart_lines(shape.chart.element)
    elif isinstance(shape, GraphicFrame) and next(shape.element.iter(DIAGRAM_REFERENCE), None) is not None:
        text = _smartart_text(shape)
        if text:
            yield text
    elif getattr(shape, "has_table", False) and shape.has_table:
        for row in shape.table.rows:
            line = " | ".join(" ".join(_frame_text(cell.text_frame).split()) for cell in row.cells).strip(" |")
            if line:
                yield line
    elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        text = _frame_text(shape.text_frame)
        if text:
            yield text


def _texts_of(shape: Any) -> Iterator[str]:
    """A shown shape's alt text, then its own text; nothing for a hidden shape."""
    properties = next(iter(_MARKED(shape.element)), None)
    if properties is None:
        yield from _own_texts(shape)
        return
    # hidden in the Selection Pane: the slide show leaves the shape out, a group's children with it
    if properties.get("hidden") in ("1", "true"):
        return
    own = list(_own_texts(shape))
    # a shape's alt text (what a screen reader says for it) reads where the shape stands, before its own text;
    # PowerPoint copies a text box's text into its description, which would read it twice
    if text := alt_text(properties, shown=" ".join(own)):
        yield text
    yield from own


def _shape_texts(shapes: Any) -> Iterator[str]:
    for shape in _with_alternate_content(shapes):
        yield from _texts_of(shape)


def _notes_texts(notes_slide: Any) -> Iterator[str]:
    """A notes page's notes and what else is on it (a picture's alt text), read in place as on a slide; not its page
    furniture (the slide's image, its number, the header, footer and date)."""
    for shape in _with_alternate_content(notes_slide.shapes):
        if not _NOTES_PAGE_FURNITURE(shape.element):
            yield from _texts_of(shape)


def load_pptx(path: Path, limits: ParseLimits) -> str:
    """Slide texts (titles, bodies, tables, groups, charts, SmartArt, each shape's alt text before its text) and
    speaker notes (marked "Speaker notes:", a notes page's pictures' alt text read in place), slide by slide; hidden
    slides and hidden shapes are left out, as the slide show leaves them out."""
    check_zip(path, PPTX, limits)
    presentation = pptx.Presentation(str(path))
    slides: list[str] = []
    for slide in presentation.slides:
        if slide.element.get("show") in ("0", "false"):
            continue
        parts = list(_shape_texts(slide.shapes))
        if slide.has_notes_slide and (notes := "\n".join(_notes_texts(slide.notes_slide))):
            parts.append(f"Speaker notes: {notes}")
        if parts:
            slides.append("\n".join(parts))
    return "\n\n".join(slides)


def _text_atoms(stream: bytes, path: Path, offsets: dict[int, int]) -> list[str]:
    """Walk the record tree linearly, descending into containers and skipping master slides, hidden slides (their
    shapes, their placeholders' text in the slide list, and their notes) and hidden shapes and groups (a hidden
    placeholder's text in the slide list too, left out once the walk has seen the placeholder)."""
    hidden_persist_ids = hidden_slide_persist_ids(stream, offsets)
    persist_ids = {offset: persist_id for persist_id, offset in offsets.items()}
    shapes_may_hide = may_hide_shapes(stream)
    pos = 0
    end = len(stream)
    slide_list_end = 0  # where the slide list being walked ends
    listed: int | None = None  # in the slide list, the persist id of the slide whose texts are being walked
    text_index = -1  # which of that slide's texts is being walked
    in_hidden_slide = False  # in the slide list, between a hidden slide's SlidePersistAtom and the next one
    hidden_slide_ids: set[int] = set()  # the notes name their slide by its slide id
    slide: int | None = None  # the persist id of the SlideContainer being walked
    slide_end = 0  # and where it ends
    hidden_texts: set[tuple[int, int]] = set()  # (persist id, text index) of the hidden placeholders' texts
    atoms: list[tuple[str, tuple[int, int] | None]] = []  # each text, and its place in the slide list
    while pos + 8 <= end:
        ver_instance, rec_type, rec_len = struct.unpack_from("<HHI", stream, pos)
        body = pos + 8
        if pos >= slide_list_end:
            in_hidden_slide, listed = False, None
        if rec_type == _CRYPT_SESSION:
            raise EncryptedDocumentError(
                f"{path.name} ({PPT}): the presentation is password-protected; remove the password and upload it again"
            )
        if rec_type == SLIDE_LIST and ver_instance >> 4 == 0:
            slide_list_end = body + rec_len
        elif rec_type == SLIDE_PERSIST and pos < slide_list_end and rec_len >= 16 and body + 16 <= end:
            listed, _, _, slide_id = struct.unpack_from("<IIII", stream, body)
            text_index, in_hidden_slide = -1, listed in hidden_persist_ids
            if in_hidden_slide:
                hidden_slide_ids.add(slide_id)
        elif rec_type == _TEXT_HEADER and listed is not None:
            text_index += 1
        elif rec_type == SLIDE and not is_hidden_slide(stream, pos):
            slide, slide_end = persist_ids.get(pos), body + rec_len
        elif (
            rec_type == SLIDE
            or (rec_type == NOTES and hidden_slide_ids and notes_slide_id(stream, pos, rec_len) in hidden_slide_ids)
            or (rec_type in (SHAPE, SHAPE_GROUP) and shapes_may_hide and is_hidden_shape(stream, pos))
        ):
            if rec_type in (SHAPE, SHAPE_GROUP) and slide is not None and pos < slide_end:
                hidden_texts.update((slide, index) for index in outline_text_indices(stream, pos))
            pos = body + rec_len
            continue
        if ver_instance & 0xF == _CONTAINER_VERSION and rec_type != _MAIN_MASTER:
            pos = body
            continue
        if rec_type in (_TEXT_CHARS_ATOM, _TEXT_BYTES_ATOM) and not in_hidden_slide:
            raw = stream[body : body + rec_len]
            text = raw.decode("utf-16-le", "replace") if rec_type == _TEXT_CHARS_ATOM else raw.decode("latin-1")
            atoms.append((text, None if listed is None else (listed, text_index)))
        pos = body + rec_len
    return [text for text, place in atoms if place not in hidden_texts]


def load_ppt(path: Path, limits: ParseLimits) -> str:
    """Text atoms of the 'PowerPoint Document' stream (slides, notes, text boxes) in file order; hidden slides and
    hidden shapes are left out, as the slide show leaves them out."""
    if not olefile.isOleFile(str(path)):
        raise CorruptDocumentError(
            f"{path.name}: declared as {PPT!r} but it is not an OLE2 (legacy PowerPoint) file; "
            "check the file's type (a .pptx must be declared as the presentationml mimetype)"
        )
    with olefile.OleFileIO(str(path)) as ole:
        if not ole.exists("PowerPoint Document"):
            raise CorruptDocumentError(
                f"{path.name} ({PPT}): the OLE file has no 'PowerPoint Document' stream; it is not a presentation"
            )
        stream = ole.openstream("PowerPoint Document").read()
        current_user = ole.openstream("Current User").read() if ole.exists("Current User") else b""
    texts: list[str] = []
    for raw in _text_atoms(stream, path, persist_offsets(stream, current_user)):
        # \r ends a paragraph and \x0b is a soft line break inside PowerPoint text
        text = _CONTROL.sub("", raw.replace("\r", "\n").replace("\x0b", "\n")).strip()
        # incremental saves can leave the same text twice in a row
        if text and (not texts or texts[-1] != text):
            texts.append(text)
    return "\n\n".join(texts)
