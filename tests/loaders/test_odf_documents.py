"""OpenDocument text files: what LibreOffice shows is what gets indexed."""

import io
from pathlib import Path

import odfdo

from quart_app.loaders import extract_text

ODT = "application/vnd.oasis.opendocument.text"
# a 1x1 transparent PNG
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c636000000200"
    "0100ffff03000006000557bfabd40000000049454e44ae426082"
)


def test_odt_pictures_do_not_put_their_file_names_in_the_text(tmp_path: Path) -> None:
    # odfdo formats a picture as "[Image Pictures/<hash>]": a name nobody reads, glued to the caption before it
    document = odfdo.Document("text")
    document.body.clear()
    document.body.append(odfdo.Paragraph("Before the picture."))
    picture = document.add_file(io.BytesIO(PIXEL))
    captioned = odfdo.Paragraph("Figure 1: the harbour")
    captioned.append(odfdo.Frame.image_frame(picture, size=("1cm", "1cm"), position=("0cm", "0cm")))
    document.body.append(captioned)
    document.body.append(odfdo.Paragraph("After the picture."))
    path = tmp_path / "report"
    document.save(str(path))
    assert extract_text(path, ODT) == "Before the picture.\n\nFigure 1: the harbour\n\nAfter the picture."
