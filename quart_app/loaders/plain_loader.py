"""Plain-text family (txt, markdown, reStructuredText, org, JSON): decoded as-is with charset detection."""

from pathlib import Path

from .limits import ParseLimits
from .text_decoding import read_text


def load_plain(path: Path, limits: ParseLimits) -> str:
    """The file's text; markup is kept because the chunker splits on it (headings, JSON structure)."""
    return read_text(path, "text/plain")
