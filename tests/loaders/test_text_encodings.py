"""Plain text, CSV and mail in any charset keep their letters: BOMs, cp1252, other Latin code pages and scripts."""

import codecs
from pathlib import Path

import pytest
from loader_fixture_files import GERMAN, write_txt_cp1252

from quart_app.loaders import extract_text


def test_cp1252_german_text_is_decoded_not_dropped(tmp_path: Path) -> None:
    text = extract_text(write_txt_cp1252(tmp_path), "text/plain")
    assert text.splitlines() == [GERMAN] * 3


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_bom_encodings(encoding: str, tmp_path: Path) -> None:
    path = tmp_path / "bom"
    path.write_bytes(GERMAN.encode(encoding))
    assert extract_text(path, "text/markdown") == GERMAN


def test_utf16_without_bom_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "utf16le"
    path.write_bytes(codecs.encode(("Grüße aus Köln und München. " * 20), "utf-16-le"))
    assert extract_text(path, "text/plain").startswith("Grüße aus Köln und München.")


def test_csv_with_cp1252_and_tabs(tmp_path: Path) -> None:
    path = tmp_path / "tabs"
    path.write_bytes("Stadt\tEinwohner\nKöln\t1084795\nDüsseldorf\t629047\n".encode("cp1252"))
    assert extract_text(path, "text/csv") == "Stadt | Einwohner\nKöln | 1084795\nDüsseldorf | 629047"


@pytest.mark.parametrize("content_type", [b"text/plain", b"text/plain; charset=us-ascii", b"text/plain; charset=utf-8"])
def test_eml_8bit_body_with_a_missing_or_wrong_charset_keeps_its_letters(tmp_path: Path, content_type: bytes) -> None:
    # the stdlib decodes with errors='replace': every umlaut of a cp1252 body became U+FFFD and "Köln" unsearchable
    path = tmp_path / "mail"
    path.write_bytes(
        b"Subject: Hallo\r\nFrom: a@example.org\r\nContent-Type: " + content_type + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + GERMAN.encode("cp1252")
    )
    assert extract_text(path, "message/rfc822") == f"Subject: Hallo\nFrom: a@example.org\n\n{GERMAN}"


@pytest.mark.parametrize(
    ("sentence", "encoding"),
    [
        ("Café crème, naïve façade", "latin-1"),
        ("El niño comió piña en la montaña", "cp1252"),
        ("Blåbærsyltetøj på smørrebrød", "latin-1"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy", "cp1250"),
        ("Zażółć gęślą jaźń", "cp1250"),
        ("Pchnąć w tę łódź jeża lub ośm skrzyń fig", "iso-8859-2"),
        # a quarter of the bytes are accents: charset-normalizer guessed Johab, Big5 or UTF-16 and the old "mostly
        # ASCII" rule kept that guess, so "Đuro i Ćiro žele čašu." was indexed as "핫ro i 쿌ro 룐le 搏뚓."
        pytest.param("Đuro i Ćiro žele čašu.", "cp1250", id="croatian-cp1250"),
        pytest.param("Ćiro ima čašu.", "iso-8859-2", id="croatian-iso-8859-2"),
        pytest.param("Ostrożnie, żółw!", "cp1250", id="polish-cp1250"),
        pytest.param("Mogę już iść?", "iso-8859-2", id="polish-iso-8859-2"),
        pytest.param("Těším se.", "cp1250", id="czech-cp1250"),
        pytest.param("Příští týden.", "iso-8859-2", id="czech-iso-8859-2"),
        pytest.param("Môžeš mi pomôcť?", "iso-8859-2", id="slovak-iso-8859-2"),
        pytest.param("Hétfőn jövök.", "cp1250", id="hungarian-cp1250"),
        pytest.param("Hétfőn jövök.", "iso-8859-2", id="hungarian-iso-8859-2"),
    ],
)
def test_short_western_and_central_european_text_keeps_its_accents(
    tmp_path: Path, sentence: str, encoding: str
) -> None:
    # charset-normalizer finds no language in a short text and took cp1250 first: "crème" was indexed as "crčme"
    path = tmp_path / "note.txt"
    path.write_bytes(sentence.encode(encoding))
    assert extract_text(path, "text/plain") == sentence


@pytest.mark.parametrize(
    ("sentence", "encoding"),
    [("Türkçe metin ığş güzel", "cp1254"), ("Lietuvių kalba yra baltų kalba, ąčęėįšųūž", "cp1257")],
)
def test_other_latin_code_pages_charset_normalizer_recognises_are_kept(
    tmp_path: Path, sentence: str, encoding: str
) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes(f"{sentence}\n".encode(encoding) * 50)
    assert extract_text(path, "text/plain") == "\n".join([sentence] * 50)


@pytest.mark.parametrize("sentence", ["Hallo Jürgen", "Danke schön", "Dobrý den"])
def test_a_few_accented_letters_are_not_read_as_another_script(tmp_path: Path, sentence: str) -> None:
    # with one non-ASCII byte every code page has zero chaos: "Hallo Jürgen" came out in Urdu as "Hallo Jﮰrgen"
    path = tmp_path / "note.txt"
    path.write_bytes(sentence.encode("cp1250"))
    assert extract_text(path, "text/plain") == sentence


@pytest.mark.parametrize(
    ("sentence", "encoding"),
    [
        ("Встреча в понедельник в десять часов утра", "cp1251"),
        ("日本語のテキストです。", "shift_jis"),
        # one or two characters whose trail bytes are ASCII letters: no two ASCII letters in a row, so no Latin word
        ("好", "big5"),
        ("三時", "shift_jis"),
    ],
)
def test_text_in_other_scripts_keeps_charset_normalizers_reading(tmp_path: Path, sentence: str, encoding: str) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes(sentence.encode(encoding))
    assert extract_text(path, "text/plain") == sentence


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (b"Content-Type: text/plain; charset=windows-1252\r\n\r\n", "Hallo Jürgen".encode("cp1252")),
        (b"\r\n", "Hallo Jürgen".encode("cp1252")),
        (
            b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
            b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n",
            "Hallo Jürgen".encode("latin-1") + b"\r\n--b--\r\n",
        ),
    ],
)
def test_eml_raw_8bit_headers_keep_their_letters(tmp_path: Path, content_type: bytes, body: bytes) -> None:
    # many mailers write non-ASCII headers as raw bytes in the body's charset, without RFC 2047 words: the stdlib
    # turned every such byte into U+FFFD and the subject and sender were indexed as "Gr��e" and "J�rgen M�ller"
    path = tmp_path / "mail"
    path.write_bytes(
        "Subject: Grüße aus Köln =?utf-8?q?f=C3=BCr?= Zoë\r\nFrom: Jürgen Müller <j@example.org>\r\n".encode("cp1252")
        + b"To: team@example.org\r\n"
        + content_type
        + body
    )
    assert extract_text(path, "message/rfc822") == (
        "Subject: Grüße aus Köln für Zoë\nFrom: Jürgen Müller <j@example.org>\nTo: team@example.org\n\nHallo Jürgen"
    )


def test_eml_header_bytes_in_no_charset_do_not_refuse_the_mail(tmp_path: Path) -> None:
    path = tmp_path / "mail"
    path.write_bytes(
        b"Subject: Report " + bytes(range(0x80, 0x100)) + b"\r\nFrom: a@example.org\r\n\r\nQuarterly figures\r\n"
    )
    text = extract_text(path, "message/rfc822")
    assert text.startswith("Subject: Report \ufffd")
    assert text.endswith("\nFrom: a@example.org\n\nQuarterly figures")
