"""Word-processing documents: .docx via python-docx, .odt via odfdo."""

import logging
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import docx
import odfdo
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from docx.blkcntnr import BlockItemContainer
from docx.document import Document as DocxDocument
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.part import Part
from docx.oxml import parse_xml
from docx.oxml.table import CT_Row, CT_Tbl, CT_Tc
from docx.oxml.text.paragraph import CT_P
from docx.oxml.text.run import CT_R
from docx.table import Table, _Cell, _Row
from lxml import etree

from .chart_text import chart_lines
from .diagram_text import DATA_RELATIONSHIP_ID, DIAGRAM_REFERENCE, diagram_lines
from .docx_alt_text import DOC_PR, TEXT_BOX, VML_PICTURES, drawing_alt_text, vml_alt_text, with_alt_texts
from .docx_hidden import DocxHiddenText
from .docx_numbering import DocxNumbering
from .library_log_redaction import library_message
from .limits import ParseLimits
from .math_text import OMATH, math_text
from .odt_comments import comments_as_paragraphs
from .odt_frames import replace_emptied_frame, text_boxes_as_paragraphs
from .odt_headings import number_headings, outline_levels, unwrap_outline_lists
from .odt_hidden import hidden_styles, remove_hidden
from .odt_lists import OdtListLabels, list_styles
from .odt_spaces import spaces_as_text
from .odt_tables import TablesTooLongError, tables_as_lines
from .zip_guard import check_zip

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
ODT = "application/vnd.oasis.opendocument.text"
_MATHML = "{http://www.w3.org/1998/Math/MathML}"
_DRAW_IMAGE = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}image"
_DRAW_OBJECT = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}object"
_DRAW_OBJECT_OLE = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}object-ole"
_TEXT_SPAN = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}span"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
# a page style's headers and footers: the default, the left (even) pages' and the first page's
_PAGE_STORIES = frozenset(f"style:{kind}{side}" for kind in ("header", "footer") for side in ("", "-left", "-first"))
# content controls (cover pages, tables of contents, form fields) and custom XML wrap paragraphs and tables
_BLOCK_WRAPPERS = frozenset({f"{_W}sdt", f"{_W}sdtContent", f"{_W}customXml"})
# runs that are not the paragraph's text: tracked deletions and moves away, text boxes (indexed on their own) and
# equations (read as a whole)
_NOT_PARAGRAPH_TEXT = frozenset({f"{_W}del", f"{_W}moveFrom", TEXT_BOX, OMATH})
_CHART_REFERENCE = "{http://schemas.openxmlformats.org/drawingml/2006/chart}chart"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_ALT_TEXT_HOLDERS = frozenset({DOC_PR, *VML_PICTURES})

logger = logging.getLogger(__name__)


class _Context(NamedTuple):
    """What the stories of one document share: the list counters, the comments by id and which runs are hidden."""

    numbering: DocxNumbering
    comments: Mapping[str, str]
    hidden: DocxHiddenText


def _row_cells(row: CT_Row, table: Table) -> Sequence[_Cell]:
    cells = list(_unwrapped(row, (CT_Tc,)))
    # python-docx's row.cells reads only the row's own w:tc: a cell inside a content control (a form's date or
    # signature field) would be lost
    if len(cells) == len(row.tc_lst):
        try:
            return _Row(row, table).cells
        except ValueError:  # a vertical merge continued from a row outside this row's content control
            pass
    return [_Cell(cell, table) for cell in cells]


def _table_lines(table: Table, part: Part, context: _Context) -> Iterator[str]:
    for row in _unwrapped(table._tbl, (CT_Row,)):
        cells: list[str] = []
        previous: Any = None
        for cell in _row_cells(row, table):
            # a horizontally merged cell comes once per grid column it spans; neighbours with equal text are kept
            # ("5 | 5 | 9" is three quarters, not two)
            if cell._tc is previous:
                continue
            previous = cell._tc
            # cell.text holds only the cell's own paragraphs: a table nested in it (forms, CVs) would be lost
            cells.append(" ".join("\n".join(_blocks(cell, part, context)).split()))
        line = " | ".join(cells).strip(" |")
        if line:
            yield line


def _unwrapped(container: Any, kinds: tuple[type, ...]) -> Iterator[Any]:
    """The children of these kinds, with those inside content controls and custom XML, which python-docx's
    iter_inner_content() and table.rows skip (a cover page's paragraphs, every item of a repeating section)."""
    for child in container.iterchildren():
        if isinstance(child, kinds):
            yield child
        elif child.tag in _BLOCK_WRAPPERS:
            yield from _unwrapped(child, kinds)


def _paragraph_text(paragraph: Any, hidden: DocxHiddenText) -> str:
    # Paragraph.text skips the runs inside tracked insertions, inline content controls and smart tags, and equations
    # a text box's own paragraphs sit inside its w:txbxContent: only wrappers below the paragraph leave a run out
    own = next(paragraph.iterancestors(*_NOT_PARAGRAPH_TEXT), None)
    # runs are checked for hidden text only in a paragraph that may have some: one lookup per paragraph, not per run
    is_hidden = hidden.run_filter(paragraph)
    pieces: list[str] = []
    alt_text_at: list[int] = []
    for item in paragraph.iter(f"{_W}r", OMATH, DOC_PR, *VML_PICTURES):
        if item.tag in _ALT_TEXT_HOLDERS:
            # a drawing's alt text reads where its run stands; a fallback's copy of a drawing is not read twice
            run = next(item.iterancestors(f"{_W}r"), None)
            reads = drawing_alt_text if item.tag == DOC_PR else vml_alt_text
            if (
                next(item.iterancestors(*_NOT_PARAGRAPH_TEXT, _MC_FALLBACK), None) is own
                and not (is_hidden is not None and run is not None and is_hidden(run))
                and (text := reads(item, lambda box: _box_text(box, hidden)))
            ):
                alt_text_at.append(len(pieces))
                pieces.append(text)
        elif (
            (isinstance(item, CT_R) or item.tag == OMATH)
            and next(item.iterancestors(*_NOT_PARAGRAPH_TEXT), None) is own
            and not (is_hidden is not None and is_hidden(item))
        ):
            pieces.append(math_text(item) if item.tag == OMATH else item.text)
    return with_alt_texts(pieces, alt_text_at) if alt_text_at else "".join(pieces)


def _part_place(rel: Any, kind: str) -> str:
    """A related part as a warning names it: by its kind and its place among the package's parts of that kind ("chart
    2 of 3"; "footnotes part" when it is the only one), never by its name, which whoever made the file chose."""
    same_kind = {
        id(other.target_part): other.target_part
        for other in rel.target_part.package.iter_rels()
        if other.reltype == rel.reltype and not other.is_external
    }
    place = next(number for number, part in enumerate(same_kind.values(), 1) if part is rel.target_part)
    return kind if len(same_kind) == 1 and kind.endswith(" part") else f"{kind} {place} of {len(same_kind)}"


def _part_xml(rel: Any, kind: str) -> Any | None:
    """A related part's XML; None, with a warning, when it is damaged: the body is still the document, so a damaged
    chart or notes part loses its own text, not the whole file."""
    try:
        return parse_xml(rel.target_part.blob)
    except etree.XMLSyntaxError as exc:
        # lxml's message names the words a damaged part has where tags should be
        logger.warning("skipped the damaged %s: %s", _part_place(rel, kind), library_message(exc))
        return None


def _drawings(paragraph: CT_P, part: Part) -> Iterator[str]:
    # charts and SmartArt sit in drawings python-docx does not read; their text is in the part the drawing names
    for reference in paragraph.iter(_CHART_REFERENCE, DIAGRAM_REFERENCE):
        is_chart = reference.tag == _CHART_REFERENCE
        rel = part.rels.get(reference.get(_RELATIONSHIP_ID if is_chart else DATA_RELATIONSHIP_ID, ""))
        if rel is None or rel.is_external or (xml := _part_xml(rel, "chart" if is_chart else "diagram")) is None:
            continue
        text = "\n".join(chart_lines(xml) if is_chart else diagram_lines(xml))
        if text:
            yield text


def _blocks(container: BlockItemContainer, part: Part, context: _Context) -> Iterator[str]:
    # `part` holds the relationships the container's r:ids name (a footnote's chart is related from the notes part)
    shown: list[str] = []  # the paragraph Word shows: those whose mark it hides run into the next one's text
    after: list[str] = []  # the charts, diagrams and comments of its paragraphs, which follow it
    for element in _unwrapped(container._element, (CT_P, CT_Tbl)):
        if isinstance(element, CT_P):
            # an empty list item still takes its number
            label = context.numbering.label(element)
            if (text := _paragraph_text(element, context.hidden)).strip():
                _run_into(shown, label + text)
            after.extend(_drawings(element, part))
            # a comment follows the paragraph where its range ends, marked as a comment
            for reference in element.iter(f"{_W}commentReference") if context.comments else ():
                if comment := context.comments.get(reference.get(f"{_W}id", "")):
                    after.append(comment)
            if context.hidden.mark_hidden(element):
                continue
        if shown:
            yield "".join(shown)
            shown = []
        if after:
            yield from after
            after = []
        if isinstance(element, CT_Tbl):
            yield "\n".join(_table_lines(Table(element, container), part, context))
    if shown:
        yield "".join(shown)
    yield from after


def _run_into(shown: list[str], text: str) -> None:
    """Add a paragraph's text (not empty) to the parts of the one before, whose mark Word hides: Word shows them as
    one, and a space keeps their last and first words two where neither side has one ("Definitions.The Buyer" would
    index as one token). Parts, joined once: a string grown paragraph by paragraph is copied whole each time."""
    if shown and not shown[-1][-1].isspace() and not text[0].isspace():
        shown.append(" ")
    shown.append(text)


def _box_text(box: Any, hidden: DocxHiddenText) -> str:
    """A text box's (w:txbxContent's) paragraphs, one a line."""
    paragraphs = (_paragraph_text(para, hidden) for para in box.iter(f"{_W}p"))
    return "\n".join(p for p in paragraphs if p.strip())


def _text_boxes(body: Any, hidden: DocxHiddenText) -> Iterator[str]:
    # text boxes live inside drawings that python-docx's paragraphs skip; Word stores each box twice
    # (DrawingML and a VML fallback), so identical boxes are kept once
    seen: set[str] = set()
    for box in body.iter(TEXT_BOX):
        text = _box_text(box, hidden)
        if text and text not in seen:
            seen.add(text)
            yield text


def _notes(document: DocxDocument, context: _Context, relationship: str, tag: str) -> Iterator[str]:
    # python-docx has no API for footnotes and endnotes: their parts are read as plain XML
    kind = "footnotes part" if relationship == RT.FOOTNOTES else "endnotes part"
    for rel in document.part.rels.values():
        if rel.reltype != relationship or rel.is_external or (notes := _part_xml(rel, kind)) is None:
            continue
        for note in notes.iterchildren(tag):
            # separators and continuation notices are layout, not notes
            if note.get(f"{_W}type") in (None, "normal"):
                text = "\n".join(_blocks(BlockItemContainer(note, document._body), rel.target_part, context)).strip()
                if text:
                    yield text


def _comments(document: DocxDocument, numbering: DocxNumbering, hidden: DocxHiddenText) -> dict[str, str]:
    """Each comment's text by its id, as "Comment by <author>: <text>" (python-docx reads comments, not where they
    stand)."""
    comments: dict[str, str] = {}
    for rel in document.part.rels.values():
        if rel.reltype != RT.COMMENTS or rel.is_external or (xml := _part_xml(rel, "comments part")) is None:
            continue
        # a list in a comment counts apart from the body's lists
        context = _Context(numbering.counted_apart(), {}, hidden)
        for comment in xml.iterchildren(f"{_W}comment"):
            container = BlockItemContainer(comment, document._body)
            text = " ".join("\n".join(_blocks(container, rel.target_part, context)).split())
            author = " ".join(comment.get(f"{_W}author", "").split())
            if text:
                comments[comment.get(f"{_W}id", "")] = f"Comment by {author}: {text}" if author else f"Comment: {text}"
    return comments


def _page_stories(document: DocxDocument) -> Iterator[Any]:
    """Every header and footer Word shows: each section's default ones, its first page's where the section has a
    title page, its even pages' where the document has different odd and even pages."""
    even_pages = document.settings.odd_and_even_pages_header_footer
    for section in document.sections:
        yield from (section.header, section.footer)
        if section.different_first_page_header_footer:
            yield from (section.first_page_header, section.first_page_footer)
        if even_pages:
            yield from (section.even_page_header, section.even_page_footer)


def load_docx(path: Path, limits: ParseLimits) -> str:
    """Body paragraphs (list items with their numbers or bullets; a drawing's alt text where it stands), tables, charts
    and SmartArt in document order, each comment after the paragraph it comments, then text boxes, footnotes and
    endnotes, then headers and footers (the first page's and even pages' too) once each: they repeat on every page,
    their text is indexed once. Hidden text (w:vanish on the run, or by Word's toggle rule through its character,
    paragraph and table styles and the document defaults) is left out."""
    check_zip(path, DOCX, limits)
    document = docx.Document(str(path))
    hidden = DocxHiddenText(document.styles.element)
    numbering = DocxNumbering(document, hidden)
    context = _Context(numbering, _comments(document, numbering, hidden), hidden)
    blocks = list(_blocks(document._body, document.part, context))
    blocks.extend(_text_boxes(document.element.body, hidden))
    blocks.extend(_notes(document, context, RT.FOOTNOTES, f"{_W}footnote"))
    blocks.extend(_notes(document, context, RT.ENDNOTES, f"{_W}endnote"))
    seen: set[str] = set()
    for story in _page_stories(document):
        # a story linked to the previous section's repeats it (and one of the first section is empty)
        text = "" if story.is_linked_to_previous else "\n".join(_blocks(story, story.part, context)).strip()
        if text and text not in seen:
            seen.add(text)
            blocks.append(text)
    return "\n\n".join(block for block in blocks if block)


def _formula_text(archive: zipfile.ZipFile, href: str) -> str:
    """A LibreOffice Math object's text: its StarMath source ("E = m c^2"), else its MathML's characters; "" for
    other objects (charts, spreadsheets) and missing or damaged parts."""
    try:
        math = fromstring(archive.read(f"{href.removeprefix('./')}/content.xml"))
    except (KeyError, ParseError, DefusedXmlException):
        return ""
    if math.tag != f"{_MATHML}math":
        return ""
    for annotation in math.iter(f"{_MATHML}annotation"):
        if annotation.get("encoding") == "StarMath 5.0" and annotation.text:
            return " ".join(annotation.text.split())
    return " ".join("".join(math.itertext()).split())


def _odt_page_stories(document: odfdo.Document) -> Iterator[str]:
    """The page styles' headers and footers (odfdo reads the body only), once each: they repeat on every page."""
    seen: set[str] = set()
    for story in document.styles.get_elements("//style:master-page/*"):
        if story.tag not in _PAGE_STORIES or story.get_attribute_string("style:display") == "false":
            continue
        lines = "".join(child.get_formatted_text() for child in story.children).splitlines()
        # tabs lay a header out in columns; a page number field leaves a gap ("Page  of 3")
        text = "\n".join(" ".join(line.split()) for line in lines if line.strip())
        if text and text not in seen:
            seen.add(text)
            yield text


def load_odt(path: Path, limits: ParseLimits) -> str:
    """Formatted text of an OpenDocument text file (headings and list items with their numbers or bullets, paragraphs,
    tables one row a line, formulas), then its pages' headers and footers once each; hidden text, paragraphs and
    sections are left out. Raises the limit's DocumentTooLargeError when repeated table rows and cells would make the
    text longer than limits.max_text_chars."""
    check_zip(path, ODT, limits)
    document = odfdo.Document(str(path))
    roots = [part.root._xml_element for part in (document.content, document.styles)]
    remove_hidden(document.body._xml_element, hidden_styles(roots))
    lists = list_styles(roots)
    for root in roots:  # the body's and the page headers'
        spaces_as_text(root)
        text_boxes_as_paragraphs(root)
        comments_as_paragraphs(root, lists)
    outline_name, outline = outline_levels(roots)
    unwrap_outline_lists(document.body._xml_element, outline_name, lists)
    number_headings(document.body._xml_element, outline)
    OdtListLabels(lists).label_lists(document.body._xml_element)
    # odfdo formats a heading without a line break: "Introduction" + "This report..." became "IntroductionThis report"
    for heading in document.body.get_headers():
        heading.tag = "text:p"
    # a formula is an embedded object odfdo does not read: its text takes the place of its frame (in the body and in
    # the page headers and footers); another object's frame (a chart, an OLE object) reads as a picture's does, as its
    # alt text or nothing, not odfdo's line break cutting its sentence
    with zipfile.ZipFile(path) as archive:
        for embedded in [embedded for root in roots for embedded in root.iter(_DRAW_OBJECT, _DRAW_OBJECT_OLE)]:
            frame = embedded.getparent()
            if frame is None or frame.getparent() is None:
                continue
            if embedded.tag == _DRAW_OBJECT and (text := _formula_text(archive, embedded.get(_XLINK_HREF) or "")):
                span = frame.makeelement(_TEXT_SPAN)
                span.text, span.tail = text, frame.tail
                frame.getparent().replace(frame, span)
            else:
                frame.remove(embedded)
                if next(frame.iterchildren(_DRAW_IMAGE), None) is None:  # else emptied with its replacement picture
                    replace_emptied_frame(frame)
    # odfdo writes a picture as "[Image Pictures/10000001000003E8….png]": a file name no reader sees, glued to the text,
    # and ends its frame with a line break that cut the sentence around an inline picture in two: its alt text, if it
    # has some, stands in its place (in the body and in the page headers and footers, a letterhead's logo)
    for image in [image for root in roots for image in root.iter(_DRAW_IMAGE)]:
        frame = image.getparent()
        frame.remove(image)
        replace_emptied_frame(frame)
    # repeated rows and cells multiply the text a small file holds: their copies count against its limit
    room = limits.max_text_chars
    try:
        for root in roots:
            room -= tables_as_lines(root, room)
    except TablesTooLongError:
        raise limits.text_too_long(path.name, ODT) from None
    return "\n\n".join([str(document.get_formatted_text()), *_odt_page_stories(document)])
