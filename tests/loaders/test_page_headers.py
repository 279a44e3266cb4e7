"""Page headers and footers repeat on every page: their text is indexed once per document, after the body."""

import zipfile
from pathlib import Path

import docx
import odfdo
from office_kit import FORMULA_CONTENT, FORMULA_FRAME, docx_text

from quart_app.loaders import extract_text

ODT = "application/vnd.oasis.opendocument.text"


def test_docx_first_page_and_even_page_headers_are_indexed_once_each(tmp_path: Path) -> None:
    # only each section's default header and footer were read: a title page's header (the letterhead) was lost
    document = docx.Document()
    document.add_paragraph("The offer.")
    section = document.sections[0]
    section.header.paragraphs[0].text = "ACME GmbH - Offer 2024-17"
    section.footer.paragraphs[0].text = "Confidential"
    section.different_first_page_header_footer = True
    section.first_page_header.paragraphs[0].text = "ACME GmbH, Hafenstrasse 1, Hamburg"
    section.first_page_footer.paragraphs[0].text = "Confidential"  # the same text again: indexed once
    document.settings.odd_and_even_pages_header_footer = True
    section.even_page_footer.paragraphs[0].text = "Offer 2024-17, even page"
    second = document.add_section()
    second.header.is_linked_to_previous = True  # repeats the first section's header: not read twice
    document.add_paragraph("The terms.")
    assert docx_text(document, tmp_path / "offer") == (
        "The offer.\n\nThe terms.\n\nACME GmbH - Offer 2024-17\n\nConfidential\n\nACME GmbH, Hafenstrasse 1, Hamburg"
        "\n\nOffer 2024-17, even page"
    )


def test_docx_title_page_header_without_title_page_is_not_shown_and_not_indexed(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("The body.")
    section = document.sections[0]
    section.different_first_page_header_footer = True
    section.first_page_header.paragraphs[0].text = "Draft letterhead"
    section.different_first_page_header_footer = False  # Word keeps the part but shows no title page
    assert docx_text(document, tmp_path / "letter") == "The body."


MASTER_PAGE_STORIES = (
    "<style:header><text:p>ACME GmbH<text:tab/>Offer 2024-17</text:p></style:header>"
    "<style:header-left><text:p>ACME GmbH<text:tab/>Offer 2024-17</text:p></style:header-left>"
    '<style:footer><text:p>Page <text:page-number text:select-page="current">1</text:page-number> - Confidential'
    "</text:p></style:footer>"
    '<style:footer-left style:display="false"><text:p>A switched-off footer</text:p></style:footer-left>'
)


def test_odt_page_headers_and_footers_are_indexed_once(tmp_path: Path) -> None:
    # odfdo reads the body only: the headers and footers of styles.xml were never indexed
    document = odfdo.Document("text")
    document.body.clear()
    document.body.append(odfdo.Paragraph("The offer."))
    master = document.styles.get_elements("//style:master-page")[0]
    for story in odfdo.Element.from_tag(f"<style:master-page>{MASTER_PAGE_STORIES}</style:master-page>").children:
        master.append(story)
    path = tmp_path / "offer"
    document.save(str(path))
    assert extract_text(path, ODT) == "The offer.\n\nACME GmbH Offer 2024-17\n\nPage - Confidential"


PICTURE = '<draw:image xlink:href="Pictures/logo.png" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/>'
FRAME = (
    '<draw:frame draw:name="{name}" text:anchor-type="{anchor}" svg:width="1cm" svg:height="1cm">{inside}</draw:frame>'
)


def test_odt_pictures_and_formulas_in_page_headers_read_as_in_the_body(tmp_path: Path) -> None:
    # the picture and formula clean-up covered the body only: a letterhead's logo read "ACME [Image
    # Pictures/logo.png]\nGmbH" (a file name, then a line break cutting the line), a formula as its replacement picture
    stories = (
        "<style:header><text:p>ACME "
        + FRAME.format(name="Logo", anchor="as-char", inside=PICTURE)
        + " GmbH</text:p><text:p>"
        + FRAME.format(name="Seal", anchor="paragraph", inside=PICTURE + "<svg:title>Quality seal</svg:title>")
        + "Certified</text:p></style:header>"
        + "<style:footer><text:p>Page 1"
        + FRAME.format(name="Bar", anchor="char", inside=PICTURE)
        + "</text:p><text:p>Rule "
        + FORMULA_FRAME
        + " holds.</text:p></style:footer>"
    )
    document = odfdo.Document("text")
    document.body.clear()
    document.body.append(odfdo.Paragraph("The offer."))
    master = document.styles.get_elements("//style:master-page")[0]
    for story in odfdo.Element.from_tag(f"<style:master-page>{stories}</style:master-page>").children:
        master.append(story)
    path = tmp_path / "offer"
    document.save(str(path))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("Object 1/content.xml", FORMULA_CONTENT)
    assert extract_text(path, ODT) == (
        "The offer.\n\nACME GmbH\nQuality seal Certified\n\nPage 1\nRule E = m c^2 holds."
    )
