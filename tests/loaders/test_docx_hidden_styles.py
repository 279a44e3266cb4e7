"""Word's hidden text (w:vanish) is a toggle property (ECMA-376 17.7.3): absolute on the run itself; in styles each
level that hides toggles it (a hiding character style in a hiding paragraph style shows its text), and a level saying
"not hidden" changes nothing."""

from pathlib import Path

import docx
from docx.enum.style import WD_STYLE_TYPE
from office_kit import docx_text


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
    assert docx_text(document, tmp_path / "offer") == "See the price list. Valid until May.\n\nThe price is 80 EUR."
