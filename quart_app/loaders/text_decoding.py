"""Bytes -> str with charset detection, so non-UTF-8 documents keep their characters."""

import codecs
import logging
from pathlib import Path

import charset_normalizer

from .errors import CorruptDocumentError
from .latin_code_pages import latin_code_page

logger = logging.getLogger(__name__)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# share of NUL characters above which "valid UTF-8" is really UTF-16/32 without BOM or binary data
_MAX_NUL_SHARE = 0.05


def decode_bytes(data: bytes, path: Path, mimetype: str) -> str:
    """Decode document bytes: BOM, then strict UTF-8, then charset-normalizer's best guess (for Latin script, the
    Western or Central European code page whose reading spells a language)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError:
                break
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if text.count("\x00") <= len(text) * _MAX_NUL_SHARE:
            return text
    match = charset_normalizer.from_bytes(data).best()
    if match is None:
        raise CorruptDocumentError(
            f"{path.name}: declared as {mimetype!r} but the bytes are not text in any known encoding; "
            "check the file's type or re-save it as UTF-8"
        )
    encoding = latin_code_page(data, match.encoding, bool(match.languages))
    logger.debug("decoded %s as %s (charset-normalizer guessed %s)", path.name, encoding, match.encoding)
    return str(match) if encoding == match.encoding else data.decode(encoding)


def read_text(path: Path, mimetype: str) -> str:
    """Read a whole text file and decode it."""
    return decode_bytes(path.read_bytes(), path, mimetype)
