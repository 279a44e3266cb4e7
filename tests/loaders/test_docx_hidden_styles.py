"""Word's hidden text (w:vanish) is a toggle property (ECMA-376 17.7.3): absolute on the run itself; in styles each
level that hides toggles it (a hiding character style in a hiding paragraph style shows its text), a level saying
"not hidden" changes nothing, and hiding document defaults hide everything a run does not show itself."""

from pathlib import Path
from typing import Any

import docx
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from office_kit import docx_text, docx_text_with_numbering, numbered_paragraph, numbering_level

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _hide(owner: Any) -> None:
    """Add <w:vanish/> to an element's w:rPr (a style's, the document defaults'), making the w:rPr if it has none."""
    rpr = owner.find(f"{_W}rPr")
    if rpr is None:
        rpr = parse_xml(f"<w:rPr {nsdecls('w')}/>")
        owner.append(rpr)
    rpr.append(parse_xml(f"<w:vanish {nsdecls('w')}/>"))


def test_docx_character_style_toggles_the_paragraph_style_s_hidden_text(tmp_path: Path) -> None:
    # the character style won over the paragraph style: a hiding one in a hiding paragraph read as hidden, and one
    # saying "not hidden" showed the paragraph style's hidden text
    document = docx.Document()
    document.styles.add_style("Draft note", WD_STYLE_TYPE.PARAGRAPH).font.hidden = True
    document.styles.add_style("Secret", WD_STYLE_TYPE.CHARACTER).font.hidden = True
    plain = document.styles.add_style("Plain", WD_STYLE_TYPE.CHARACTER)
    plain.font.hidden = False
    twice = document.styles.add_style("Twice", WD_STYLE_TYPE.CHARACTER)
    twice.base_style = document.styles["Secret"]
    twice.font.hidden = True  # set in the style and its base: the style's own value, not toggled back by the base's
    draft = document.add_paragraph("Ask Bob first. ", style="Draft note")
    draft.add_run("See the price list.", style="Secret")
    draft.add_run(" (internal)", style="Plain")
    draft.add_run(" Valid until May.").font.hidden = False
    shown = document.add_paragraph("The price is 80 EUR")
    shown.add_run(" (margin 30%)", style="Twice")
    shown.add_run(".", style="Plain")
    # the paragraph style hides the draft's mark too: Word runs its shown text into the next paragraph
    assert docx_text(document, tmp_path / "offer") == "See the price list. Valid until May. The price is 80 EUR."


def _hide_mark(paragraph: Any, properties: str = "<w:vanish/>") -> None:
    """Give the paragraph's mark these run properties (w:pPr/w:rPr)."""
    paragraph._p.get_or_add_pPr().append(parse_xml(f"<w:rPr {nsdecls('w')}>{properties}</w:rPr>"))


def test_docx_a_paragraph_whose_mark_is_hidden_runs_into_the_next_one(tmp_path: Path) -> None:
    # Word shows a paragraph whose mark is hidden run into the next one (a run-in heading: Word's style separator is
    # such a mark); a line break stood between them
    document = docx.Document()
    _hide_mark(document.add_paragraph("Definitions. ", style="Heading 2"), "<w:vanish/><w:specVanish/>")
    document.add_paragraph("The Buyer is ACME Corp.")
    _hide_mark(document.add_paragraph("Price: "))
    _hide_mark(document.add_paragraph("80 "))
    document.add_paragraph("EUR.")
    # a mark saying "not hidden" ends its paragraph; one hidden before a table ends it as well
    _hide_mark(document.add_paragraph("Valid until May."), '<w:vanish w:val="0"/>')
    _hide_mark(document.add_paragraph("Terms:"))
    document.add_table(rows=1, cols=1).cell(0, 0).text = "Net 30"
    _hide_mark(document.add_paragraph("Signed."))
    assert docx_text(document, tmp_path / "contract") == (
        "Definitions. The Buyer is ACME Corp.\n\nPrice: 80 EUR.\n\nValid until May.\n\nTerms:\n\nNet 30\n\nSigned."
    )


def test_docx_text_hidden_by_a_table_style_is_left_out(tmp_path: Path) -> None:
    # only run, character and paragraph styles were read: a hiding table style's cells were indexed
    document = docx.Document()
    confidential = document.styles.add_style("Confidential table", WD_STYLE_TYPE.TABLE)
    _hide(confidential.element)
    document.styles.add_style("Reviewer copy", WD_STYLE_TYPE.TABLE).base_style = confidential
    document.styles.add_style("Secret", WD_STYLE_TYPE.CHARACTER).font.hidden = True
    hidden = document.add_table(rows=1, cols=2, style="Reviewer copy")
    hidden.cell(0, 0).text = "Supplier"
    hidden.cell(0, 1).paragraphs[0].add_run("ACME Corp", style="Secret")  # toggled back: shown
    # a list number is formatted as its paragraph mark, which the table style hides too
    hidden.cell(0, 1).add_paragraph(style="List Number").add_run("Step shown").font.hidden = False
    shown = document.add_table(rows=1, cols=2)
    shown.cell(0, 0).text = "Price"
    shown.cell(0, 1).text = "80 EUR"
    # and the first paragraph's mark: Word runs it into the second
    assert docx_text(document, tmp_path / "offer") == "ACME Corp Step shown\n\nPrice | 80 EUR"


def test_docx_text_hidden_by_the_document_defaults_shows_only_where_a_run_shows_it(tmp_path: Path) -> None:
    # w:docDefaults was not read: a document hiding all its text by default was indexed whole
    document = docx.Document()
    defaults = document.styles.element.find(f"{_W}docDefaults/{_W}rPrDefault")
    assert defaults is not None
    _hide(defaults)
    document.styles.add_style("Secret", WD_STYLE_TYPE.CHARACTER).font.hidden = True
    paragraph = document.add_paragraph("Draft: ")
    paragraph.add_run("do not send", style="Secret")  # a hiding style does not toggle the defaults' hidden text
    paragraph.add_run("Valid until May.").font.hidden = False
    # a list number is formatted as its paragraph mark, which the defaults hide too
    document.add_paragraph(style="List Number").add_run("Shown step.").font.hidden = False
    # and every paragraph mark: Word runs the paragraphs together
    assert docx_text(document, tmp_path / "offer") == "Valid until May. Shown step."


def test_docx_paragraphs_without_a_style_take_the_default_paragraph_style_s_hidden_text(tmp_path: Path) -> None:
    # a paragraph naming no style takes the default one (w:default, "Normal"), which was never looked up
    document = docx.Document()
    _hide(document.styles["Normal"].element)
    document.styles.add_style("Body", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("Internal note: do not send.")
    document.add_paragraph("Valid until May.", style="Body")
    assert docx_text(document, tmp_path / "offer") == "Valid until May."


def _conditional(kind: str, vanish: str = "<w:vanish/>") -> Any:
    return parse_xml(f'<w:tblStylePr {nsdecls("w")} w:type="{kind}"><w:rPr>{vanish}</w:rPr></w:tblStylePr>')


def _table(document: Any, style: str, rows: list[tuple[str, ...]]) -> Any:
    table = document.add_table(rows=len(rows), cols=len(rows[0]), style=style)
    for row, texts in zip(table.rows, rows, strict=True):
        for cell, text in zip(row.cells, texts, strict=True):
            cell.text = text
    return table


def test_docx_text_hidden_by_a_table_style_s_conditional_formats_is_left_out(tmp_path: Path) -> None:
    # a table style's header-row and banding formats (w:tblStylePr) were not read: a header row the style hides was
    # indexed. Word applies them banding first, then first column, then header row, each overriding the one before.
    document = docx.Document()
    quiz = document.styles.add_style("Quiz", WD_STYLE_TYPE.TABLE)
    quiz.element.append(_conditional("firstRow"))
    quiz.element.append(_conditional("band2Horz"))
    quiz.element.append(_conditional("firstCol", '<w:vanish w:val="0"/>'))
    document.styles.add_style("Quiz copy", WD_STYLE_TYPE.TABLE).base_style = quiz
    # python-docx's tables look like Word's default: header row and first column formats, row banding
    _table(document, "Quiz", [("Draft header", "internal"), ("Q1", "Paris"), ("Q2", "Rome"), ("Q3", "Oslo")])
    unlooked = _table(document, "Quiz", [("Header shown", "where the look turns it off")])
    look = unlooked._tbl.tblPr.find(f"{_W}tblLook")
    look.set(f"{_W}firstRow", "0")
    _table(document, "Quiz copy", [("Hidden header", "through the base style")])
    # a total row and every second column after the first hidden, where the look asks for both
    totals = document.styles.add_style("Totals", WD_STYLE_TYPE.TABLE)
    totals.element.append(_conditional("lastRow"))
    totals.element.append(_conditional("band2Vert"))
    looked = _table(document, "Totals", [("Item", "Q1", "Q2"), ("Bolts", "4", "5"), ("Total", "4", "5")])
    look = looked._tbl.tblPr.find(f"{_W}tblLook")
    look.set(f"{_W}lastRow", "1")
    look.set(f"{_W}noVBand", "0")
    assert docx_text(document, tmp_path / "quiz") == (
        "Q1 | Paris\nQ2\nQ3 | Oslo\n\nHeader shown | where the look turns it off\n\nItem | Q1\nBolts | 4"
    )


# abstract 40: a level whose number takes a character style (w:rStyle in its w:rPr); abstract 41: a plain "1)"
STYLED_NUMBERS = (
    f"<w:numbering {nsdecls('w')}>"
    '<w:abstractNum w:abstractNumId="40">'
    + numbering_level(0, "decimal", "%1.").replace("</w:lvl>", '<w:rPr><w:rStyle w:val="NumberOff"/></w:rPr></w:lvl>')
    + "</w:abstractNum>"
    '<w:abstractNum w:abstractNumId="41">' + numbering_level(0, "decimal", "%1)") + "</w:abstractNum>"
    '<w:num w:numId="1"><w:abstractNumId w:val="40"/></w:num>'
    '<w:num w:numId="2"><w:abstractNumId w:val="41"/></w:num>'
    "</w:numbering>"
)


def test_docx_list_numbers_hidden_through_character_and_paragraph_styles_are_left_out(tmp_path: Path) -> None:
    # a number is formatted as a run holding its paragraph mark's properties and its level's: a character style there
    # that hides (its own w:vanish or its base style's), or a hiding paragraph style, was not read
    document = docx.Document()
    hiding = document.styles.add_style("HiddenBase", WD_STYLE_TYPE.CHARACTER)
    hiding.font.hidden = True
    number_off = document.styles.add_style("NumberOff", WD_STYLE_TYPE.CHARACTER)
    number_off.base_style = hiding
    document.styles.add_style("MarkOff", WD_STYLE_TYPE.CHARACTER).base_style = number_off
    document.styles.add_style("Draft", WD_STYLE_TYPE.PARAGRAPH).font.hidden = True
    numbered_paragraph(document, "Scope", 1)  # the level's character style hides its number
    numbered_paragraph(document, "Goods", 2)
    mark = parse_xml(f'<w:rPr {nsdecls("w")}><w:rStyle w:val="MarkOff"/></w:rPr>')
    document.paragraphs[-1]._p.get_or_add_pPr().append(mark)  # the paragraph mark's, two styles down the chain
    for text, num_id in (("Services", 2), ("Pricing", 1)):
        numbered_paragraph(document, text, num_id)
        document.paragraphs[-1].style = document.styles["Draft"]  # the mark hidden by the paragraph style ...
        document.paragraphs[-1].runs[0].font.hidden = False  # ... the text shown by the run's own formatting
    numbered_paragraph(document, "Terms", 2)
    document.paragraphs[-1].add_run(" (net 30)", style="MarkOff")
    # "Pricing": a hiding character style in a hiding paragraph style shows, by Word's toggle rule; a paragraph whose
    # mark is hidden runs into the next one, as Word shows it
    assert docx_text_with_numbering(document, STYLED_NUMBERS, tmp_path / "contract") == (
        "Scope\n\nGoods Services 2. Pricing 3) Terms"
    )
