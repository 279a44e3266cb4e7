"""Numbered and bulleted lists keep the numbers a reader sees: a question about "step 3" must find step 3."""

from pathlib import Path

import docx
import pytest
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from office_kit import (
    docx_text,
    docx_text_with_numbering,
    numbered_paragraph,
    numbering_level,
    odt_text,
    odt_with_styles,
)

from quart_app.loaders.list_labels import counter_text

# abstract 10: a procedure (1. / a) / iv.); abstract 11: a legal outline (1 / 1.1 / 1.1.1) under a roman top level;
# abstract 12: bullets; num 4 restarts the procedure list, num 5 continues it
NUMBERING = (
    f"<w:numbering {nsdecls('w')}>"
    '<w:abstractNum w:abstractNumId="10">'
    + numbering_level(0, "decimal", "%1.")
    + numbering_level(1, "lowerLetter", "%2)")
    + numbering_level(2, "lowerRoman", "%3.", start=4)
    + "</w:abstractNum>"
    '<w:abstractNum w:abstractNumId="11">'
    + numbering_level(0, "upperRoman", "%1.")
    + numbering_level(1, "decimal", "%1.%2", legal=True)
    + numbering_level(2, "decimal", "%1.%2.%3", legal=True)
    + "</w:abstractNum>"
    '<w:abstractNum w:abstractNumId="12">'
    + numbering_level(0, "bullet", "\uf0b7")
    + numbering_level(1, "bullet", "o")
    + "</w:abstractNum>"
    '<w:num w:numId="1"><w:abstractNumId w:val="10"/></w:num>'
    '<w:num w:numId="2"><w:abstractNumId w:val="11"/></w:num>'
    '<w:num w:numId="3"><w:abstractNumId w:val="12"/></w:num>'
    '<w:num w:numId="4"><w:abstractNumId w:val="10"/>'
    '<w:lvlOverride w:ilvl="0"><w:startOverride w:val="1"/></w:lvlOverride></w:num>'
    '<w:num w:numId="5"><w:abstractNumId w:val="10"/></w:num>'
    "</w:numbering>"
)


def test_docx_list_items_keep_their_automatic_numbers_and_bullets(tmp_path: Path) -> None:
    # python-docx reads a list item's text without its number: "step 3" was nowhere in the index
    document = docx.Document()
    document.add_paragraph("Installation")
    numbered_paragraph(document, "Download the package.", 1)
    numbered_paragraph(document, "Check its signature.", 1)
    numbered_paragraph(document, "with gpg", 1, level=1)
    numbered_paragraph(document, "with sha256sum", 1, level=1)
    numbered_paragraph(document, "offline", 1, level=2)
    numbered_paragraph(document, "Unpack it.", 1)
    numbered_paragraph(document, "into /opt", 1, level=1)
    document.add_paragraph("Scope")
    numbered_paragraph(document, "General", 2)
    numbered_paragraph(document, "Definitions", 2, level=1)
    numbered_paragraph(document, "Terms", 2, level=2)
    numbered_paragraph(document, "Abbreviations", 2, level=2)
    numbered_paragraph(document, "Duties", 2)
    numbered_paragraph(document, "Reporting", 2, level=1)
    numbered_paragraph(document, "a first point", 3)
    numbered_paragraph(document, "a sub-point", 3, level=1)
    numbered_paragraph(document, "Start again.", 4)
    numbered_paragraph(document, "", 4)  # an empty item still takes its number
    numbered_paragraph(document, "Continued by another list of the same kind.", 5)
    assert docx_text_with_numbering(document, NUMBERING, tmp_path / "manual") == (
        "Installation\n\n1. Download the package.\n\n2. Check its signature.\n\na) with gpg\n\nb) with sha256sum\n\n"
        "iv. offline\n\n3. Unpack it.\n\na) into /opt\n\nScope\n\nI. General\n\n1.1 Definitions\n\n1.1.1 Terms\n\n"
        "1.1.2 Abbreviations\n\nII. Duties\n\n2.1 Reporting\n\n- a first point\n\n- a sub-point\n\n1. Start again.\n\n"
        "3. Continued by another list of the same kind."
    )


def test_docx_list_styles_number_their_paragraphs(tmp_path: Path) -> None:
    # Word's "List Number" and "List Bullet" styles carry the numbering; the paragraphs name only the style
    document = docx.Document()
    for step in ("Open the valve.", "Wait a minute.", "Close the valve."):
        document.add_paragraph(step, style="List Number")
    document.add_paragraph("Spare parts:")
    document.add_paragraph("a gasket", style="List Bullet")
    assert docx_text(document, tmp_path / "steps") == (
        "1. Open the valve.\n\n2. Wait a minute.\n\n3. Close the valve.\n\nSpare parts:\n\n- a gasket"
    )


def _hidden_level(index: int, text: str, vanish: str = "<w:vanish/>") -> str:
    return numbering_level(index, "decimal", text).replace("</w:lvl>", f"<w:rPr>{vanish}</w:rPr></w:lvl>")


# abstract 20: chapters whose number Word hides (the level's w:rPr has w:vanish), sections numbered under them; num 2
# hides nothing but overrides its first level with one hiding its number; num 3 says "not hidden"
HIDDEN_NUMBERS = (
    f"<w:numbering {nsdecls('w')}>"
    '<w:abstractNum w:abstractNumId="20">'
    + _hidden_level(0, "%1.")
    + numbering_level(1, "decimal", "%1.%2")
    + "</w:abstractNum>"
    '<w:abstractNum w:abstractNumId="21">' + numbering_level(0, "decimal", "(%1)") + "</w:abstractNum>"
    '<w:abstractNum w:abstractNumId="22">' + _hidden_level(0, "%1)", '<w:vanish w:val="0"/>') + "</w:abstractNum>"
    '<w:num w:numId="1"><w:abstractNumId w:val="20"/></w:num>'
    '<w:num w:numId="2"><w:abstractNumId w:val="21"/><w:lvlOverride w:ilvl="0">'
    + _hidden_level(0, "(%1)")
    + "</w:lvlOverride></w:num>"
    '<w:num w:numId="3"><w:abstractNumId w:val="22"/></w:num>'
    "</w:numbering>"
)


def test_docx_list_levels_whose_number_is_hidden_show_no_number_and_still_count(tmp_path: Path) -> None:
    # a level's run properties hiding its number (w:rPr/w:vanish, ECMA-376 17.9) were ignored: "1. Scope" was indexed
    # where Word shows "Scope"
    document = docx.Document()
    numbered_paragraph(document, "Scope", 1)
    numbered_paragraph(document, "Goods", 1, level=1)
    numbered_paragraph(document, "Terms", 1)
    numbered_paragraph(document, "Payment", 1, level=1)
    numbered_paragraph(document, "An overridden level hides its number.", 2)
    numbered_paragraph(document, "A level saying not hidden shows it.", 3)
    assert docx_text_with_numbering(document, HIDDEN_NUMBERS, tmp_path / "contract") == (
        "Scope\n\n1.1 Goods\n\nTerms\n\n2.1 Payment\n\nAn overridden level hides its number.\n\n"
        "1) A level saying not hidden shows it."
    )


# abstract 30: a procedure (1. / a)); abstract 31: a level whose own run properties say "not hidden"
MARKED_NUMBERS = (
    f"<w:numbering {nsdecls('w')}>"
    '<w:abstractNum w:abstractNumId="30">'
    + numbering_level(0, "decimal", "%1.")
    + numbering_level(1, "lowerLetter", "%2)")
    + "</w:abstractNum>"
    '<w:abstractNum w:abstractNumId="31">' + _hidden_level(0, "%1)", '<w:vanish w:val="0"/>') + "</w:abstractNum>"
    '<w:num w:numId="1"><w:abstractNumId w:val="30"/></w:num>'
    '<w:num w:numId="2"><w:abstractNumId w:val="31"/></w:num>'
    "</w:numbering>"
)


def _marked_item(document: docx.document.Document, text: str, num_id: int, mark: str, level: int = 0) -> None:
    """A list item whose paragraph mark has these run properties (w:pPr/w:rPr)."""
    numbered_paragraph(document, text, num_id, level)
    document.paragraphs[-1]._p.get_or_add_pPr().append(parse_xml(f"<w:rPr {nsdecls('w')}>{mark}</w:rPr>"))


def test_docx_list_items_whose_paragraph_mark_is_hidden_show_no_number_and_still_count(tmp_path: Path) -> None:
    # Word formats a list number as the paragraph's mark (w:pPr/w:rPr), the level's run properties over it: a number
    # hidden through the mark alone was indexed ("1. Scope" where Word shows "Scope")
    document = docx.Document()
    _marked_item(document, "Scope", 1, "<w:vanish/>")
    numbered_paragraph(document, "Goods", 1, level=1)
    _marked_item(document, "Services", 1, "<w:b/><w:vanish/>", level=1)
    numbered_paragraph(document, "Terms", 1)
    _marked_item(document, "Payment", 1, '<w:vanish w:val="0"/>')
    _marked_item(document, "The level's own properties win over the mark's.", 2, "<w:vanish/>")
    # a paragraph whose mark is hidden runs into the next one, as Word shows it
    assert docx_text_with_numbering(document, MARKED_NUMBERS, tmp_path / "contract") == (
        "Scope a) Goods\n\nServices 2. Terms\n\n3. Payment\n\n1) The level's own properties win over the mark's."
    )


def test_a_docx_paragraph_naming_an_undefined_list_reads_plainly(tmp_path: Path) -> None:
    document = docx.Document()
    numbered_paragraph(document, "Numbered nowhere.", 99)
    assert docx_text(document, tmp_path / "orphan") == "Numbered nowhere."


@pytest.mark.parametrize(
    ("number", "style", "shown"),
    [
        (4, "lowerRoman", "iv"),
        (1994, "upperRoman", "MCMXCIV"),
        (27, "lowerLetter", "aa"),
        (28, "upperLetter", "BB"),
        (7, "decimalZero", "07"),
        (3, "ideographDigital", "3"),
    ],
)
def test_counter_styles(number: int, style: str, shown: str) -> None:
    assert counter_text(number, style) == shown


ODT = "application/vnd.oasis.opendocument.text"
ODT_LIST_STYLES = (
    '<text:list-style style:name="Steps">'
    '<text:list-level-style-number text:level="1" style:num-suffix="." style:num-format="1"/>'
    '<text:list-level-style-number text:level="2" style:num-suffix=")" style:num-format="a"/>'
    '<text:list-level-style-number text:level="3" style:num-suffix="." style:num-format="i" text:start-value="4"/>'
    "</text:list-style>"
    '<text:list-style style:name="Outline">'
    '<text:list-level-style-number text:level="1" style:num-prefix="§ " style:num-format="1"/>'
    '<text:list-level-style-number text:level="2" style:num-format="1" text:display-levels="2"/>'
    '<text:list-level-style-number text:level="3" style:num-format="A" text:display-levels="3"/>'
    "</text:list-style>"
    '<text:list-style style:name="Dots">'
    '<text:list-level-style-bullet text:level="1" text:bullet-char="•"/>'
    "</text:list-style>"
)


def _odt_list(style: str, *items: str, attributes: str = "") -> str:
    return f'<text:list text:style-name="{style}" {attributes}>{"".join(items)}</text:list>'


def _odt_item(text: str, nested: str = "", attributes: str = "") -> str:
    return f"<text:list-item {attributes}><text:p>{text}</text:p>{nested}</text:list-item>"


def test_odt_list_items_keep_their_numbers_and_bullets(tmp_path: Path) -> None:
    # odfdo writes every list item as "- item": numbered steps lost their numbers
    body = [
        "<text:p>Installation</text:p>",
        _odt_list(
            "Steps",
            _odt_item("Download the package."),
            _odt_item(
                "Check its signature.",
                "<text:list>"
                + _odt_item("with gpg")
                + _odt_item("with sha256sum", "<text:list>" + _odt_item("offline") + "</text:list>")
                + "</text:list>",
            ),
            attributes='xml:id="list1"',
        ),
        "<text:p>An interruption.</text:p>",
        _odt_list("Steps", _odt_item("Unpack it."), attributes='text:continue-list="list1"'),
        _odt_list(
            "Steps", _odt_item("A new list starts again."), _odt_item("Jump.", attributes='text:start-value="7"')
        ),
        _odt_list(
            "Outline",
            "<text:list-header><text:p>Contents</text:p></text:list-header>",
            _odt_item(
                "General",
                "<text:list>"
                + _odt_item("Terms", "<text:list>" + _odt_item("Words") + "</text:list>")
                + "</text:list>",
            ),
            _odt_item("Duties"),
        ),
        _odt_list("Dots", _odt_item("a point")),
        "<text:list>" + _odt_item("a list without style") + "</text:list>",
    ]
    assert odt_text(odt_with_styles(ODT_LIST_STYLES), body, tmp_path / "manual") == (
        "Installation\n\n1. Download the package.\n\n2. Check its signature.\n\na) with gpg\n\nb) with sha256sum\n\n"
        "iv. offline\n\nAn interruption.\n\n3. Unpack it.\n\n1. A new list starts again.\n\n7. Jump.\n\nContents\n\n"
        "§ 1 General\n\n1.1 Terms\n\n1.1.A Words\n\n§ 2 Duties\n\n- a point\n\n- a list without style"
    )


# chapter numbering as LibreOffice saves it in styles.xml: "1.", then "1.1", then "1.1.1"
ODT_OUTLINE_STYLE = (
    '<text:outline-style style:name="Outline">'
    '<text:outline-level-style text:level="1" style:num-format="1" style:num-suffix="."/>'
    '<text:outline-level-style text:level="2" style:num-format="1" text:display-levels="2"/>'
    '<text:outline-level-style text:level="3" style:num-format="1" text:display-levels="3"/>'
    '<text:outline-level-style text:level="4" style:num-format=""/>'
    "</text:outline-style>"
)


def test_odt_headings_keep_their_outline_numbers(tmp_path: Path) -> None:
    # odfdo reads a heading's text only: "see section 2.3.1" found no section 2.3.1
    document = odt_with_styles(ODT_LIST_STYLES, outline=ODT_OUTLINE_STYLE)
    body = (
        '<text:h text:outline-level="1">Introduction</text:h>',
        '<text:h text:outline-level="2">Scope</text:h>',
        "<text:p>Some text.</text:p>",
        '<text:h text:outline-level="1">Methods</text:h>',
        '<text:h text:outline-level="2">Data</text:h>',
        '<text:h text:outline-level="2">Tools</text:h>',
        '<text:section text:name="S1"><text:h text:outline-level="2">Process</text:h></text:section>',
        '<text:h text:outline-level="3">Sampling</text:h>',
        '<text:h text:outline-level="4">Notes</text:h>',
        _odt_list("Steps", '<text:list-item><text:h text:outline-level="1">A listed heading</text:h></text:list-item>'),
        '<text:h text:outline-level="1" text:is-list-header="true">Appendix</text:h>',
        '<text:h text:outline-level="1">Results</text:h>',
        '<text:h text:outline-level="1" text:restart-numbering="true" text:start-value="7">Annex</text:h>',
        '<text:h text:outline-level="1"><text:number>8.</text:number>Index</text:h>',
    )
    assert odt_text(document, body, tmp_path / "report") == (
        "1. Introduction\n\n1.1 Scope\n\nSome text.\n\n2. Methods\n\n2.1 Data\n\n2.2 Tools\n\n2.3 Process\n\n"
        "2.3.1 Sampling\n\nNotes\n\n1. A listed heading\n\nAppendix\n\n3. Results\n\n7. Annex\n\n8. Index"
    )


def _numbered_paragraph(text: str, attributes: str, tag: str = "text:p") -> str:
    # with the label the writer showed when it saved, which the list style's label replaces
    outline = ' text:outline-level="1"' if tag == "text:h" else ""
    return (
        f"<text:numbered-paragraph {attributes}><text:number>9.</text:number><{tag}{outline}>{text}</{tag}>"
        "</text:numbered-paragraph>"
    )


def test_odt_numbered_paragraphs_keep_their_text_and_their_list_s_numbers(tmp_path: Path) -> None:
    # odfdo read no text:numbered-paragraph: their text was lost, and a heading in one was counted in the outline
    document = odt_with_styles(ODT_LIST_STYLES, outline=ODT_OUTLINE_STYLE)
    body = (
        '<text:h text:outline-level="1">Introduction</text:h>',
        _numbered_paragraph("Scope", 'text:list-id="terms" text:style-name="Steps"', tag="text:h"),
        _numbered_paragraph("Goods are shipped in June.", 'text:list-id="terms" text:level="2"'),
        "<text:p>An interruption.</text:p>",
        _numbered_paragraph("Payment", 'text:list-id="terms"'),
        _numbered_paragraph("Annex", 'text:list-id="other" text:style-name="Steps" text:start-value="5"'),
        '<text:h text:outline-level="1">Results</text:h>',
    )
    assert odt_text(document, body, tmp_path / "terms") == (
        "1. Introduction\n\n1. Scope\n\na) Goods are shipped in June.\n\nAn interruption.\n\n2. Payment\n\n5. Annex\n\n"
        "2. Results"
    )


def test_odt_list_without_a_style_numbers_its_items_by_their_paragraph_style_s_list_style(tmp_path: Path) -> None:
    # a list naming no list style showed bullets: LibreOffice numbers its headings and paragraphs by the list style
    # their paragraph style names (style:list-style-name), set on it or on the style it inherits from
    document = odt_with_styles(
        ODT_LIST_STYLES
        + '<style:style style:name="P1" style:family="paragraph" style:list-style-name="Steps"/>'
        + '<style:style style:name="P2" style:family="paragraph" style:parent-style-name="P1"/>'
    )
    body = (
        "<text:list>"
        + '<text:list-item><text:h text:style-name="P1" text:outline-level="1">Scope</text:h></text:list-item>'
        + '<text:list-item><text:p text:style-name="P2">Terms</text:p></text:list-item>'
        + _odt_item("Plain")
        + "</text:list>",
    )
    assert odt_text(document, body, tmp_path / "terms") == "1. Scope\n\n2. Terms\n\n- Plain"


def test_odt_headings_in_lists_of_the_outline_style_keep_their_outline_numbers(tmp_path: Path) -> None:
    # a list naming the outline numbering ("Outline", no list style) as its style showed its headings as bullets and
    # left them out of the outline's count
    document = odt_with_styles(outline=ODT_OUTLINE_STYLE)
    body = (
        _odt_list("Outline", '<text:list-item><text:h text:outline-level="1">Introduction</text:h></text:list-item>'),
        "<text:p>Some text.</text:p>",
        _odt_list(
            "Outline",
            '<text:list-item><text:list><text:list-item><text:h text:outline-level="2">Scope</text:h>'
            "</text:list-item></text:list></text:list-item>",
            attributes='text:continue-numbering="true"',
        ),
        '<text:h text:outline-level="1">Methods</text:h>',
    )
    assert odt_text(document, body, tmp_path / "report") == "1. Introduction\n\nSome text.\n\n1.1 Scope\n\n2. Methods"
