"""Office equations (OMML) are indexed as linear text where they stand in the paragraph."""

from pathlib import Path

import docx
from docx.oxml import parse_xml
from office_kit import deck_text, docx_text, equation_text_box, titled_slide
from pptx.oxml import parse_xml as parse_pptx_xml

_MATH = 'xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math"'


def _run(text: str) -> str:
    return f"<m:r><m:t>{text}</m:t></m:r>"


# E=mc², the mean (a+b)/2 and a sum, as Word and PowerPoint's equation editor write them
RELATIVITY = f"{_run('E=m')}<m:sSup><m:sSupPr/><m:e>{_run('c')}</m:e><m:sup>{_run('2')}</m:sup></m:sSup>"
MEAN = f"{_run('m=')}<m:f><m:fPr/><m:num>{_run('a+b')}</m:num><m:den>{_run('2')}</m:den></m:f>"
SUM = (
    '<m:nary><m:naryPr><m:chr m:val="∑"/></m:naryPr>'
    f"<m:sub>{_run('i=1')}</m:sub><m:sup>{_run('n')}</m:sup><m:e><m:sSub><m:e>{_run('x')}</m:e>"
    f"<m:sub>{_run('i')}</m:sub></m:sSub></m:e></m:nary>"
)
ROOT = (
    f"<m:rad><m:radPr/><m:deg/><m:e>{_run('b')}<m:sSup><m:e>{_run('')}</m:e><m:sup>{_run('2')}</m:sup></m:sSup>"
    f"{_run('-4ac')}</m:e></m:rad>"
)


def test_docx_equations_are_indexed_in_the_sentence_they_belong_to(tmp_path: Path) -> None:
    # the paragraph's text read only w:r runs: "The rest energy is  for a body at rest." lost the formula
    document = docx.Document()
    inline = document.add_paragraph("The rest energy is ")
    inline._p.append(parse_xml(f"<m:oMath {_MATH}>{RELATIVITY}</m:oMath>"))
    inline.add_run(" for a body at rest.")
    for equation in (MEAN, SUM, ROOT):  # display equations, each in its own paragraph
        document.add_paragraph()._p.append(
            parse_xml(f"<m:oMathPara {_MATH}><m:oMath>{equation}</m:oMath></m:oMathPara>")
        )
    assert docx_text(document, tmp_path / "physics.docx") == (
        "The rest energy is E=mc^2 for a body at rest.\n\nm=(a+b)/2\n\n∑_(i=1)^n x_i\n\n√(b^2-4ac)"
    )


def test_pptx_equations_are_indexed_in_their_text_box(tmp_path: Path) -> None:
    presentation, slide = titled_slide("Relativity")
    slide.shapes._spTree.append(parse_pptx_xml(equation_text_box("Rest energy is ", " for a body at rest", RELATIVITY)))
    assert deck_text(presentation, tmp_path / "physics") == "Relativity\nRest energy is E=mc^2 for a body at rest"
