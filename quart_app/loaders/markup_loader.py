"""Markup formats: HTML (stdlib parser), XML (defusedxml, entity expansion refused), RTF (striprtf)."""

import xml.sax
import xml.sax.handler
from pathlib import Path

import defusedxml.sax as defused_sax
from defusedxml import DefusedXmlException
from striprtf.striprtf import rtf_to_text

from .errors import CorruptDocumentError, library_failure
from .html_text import html_to_text
from .limits import ParseLimits
from .text_decoding import read_text

XML = "application/xml"
RTF = "text/rtf"
HTML = "text/html"


def load_html(path: Path, limits: ParseLimits) -> str:
    """Visible text of an HTML page; scripts, styles and markup dropped."""
    return html_to_text(read_text(path, HTML))


class _XmlText(xml.sax.handler.ContentHandler):
    """Collects character data in document order, one text node per line."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._buffer: list[str] = []

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        if text:
            self.lines.append(text)
        self._buffer.clear()

    def startElement(self, name: str, attrs: object) -> None:
        self._flush()

    def endElement(self, name: str) -> None:
        self._flush()

    def characters(self, content: str) -> None:
        self._buffer.append(content)


def load_xml(path: Path, limits: ParseLimits) -> str:
    """Text content of every element, one text node per line (tags and attributes dropped)."""
    handler = _XmlText()
    try:
        with path.open("rb") as fh:
            defused_sax.parse(fh, handler, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        # its class names the kind of declaration; its message quotes the entity's name and system id from the file
        raise CorruptDocumentError(
            f"{path.name} ({XML}): the XML declares entities or external references ({library_failure(exc)}), refused"
            " for safety; "
            "remove the DTD entity declarations"
        ) from None
    except xml.sax.SAXParseException as exc:
        raise CorruptDocumentError(
            f"{path.name}: declared as {XML!r} but it is not well-formed XML ({exc}); fix the file or its mimetype"
        ) from None
    return "\n".join(handler.lines)


def _decode_rtf(data: bytes) -> str:
    # RTF is 7-bit by spec; stray 8-bit bytes are almost always the ANSI code page
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def load_rtf(path: Path, limits: ParseLimits) -> str:
    """Plain text of an RTF document (control words and groups removed, \\'xx escapes decoded)."""
    raw = path.read_bytes()
    if not raw.lstrip().startswith(b"{\\rtf"):
        raise CorruptDocumentError(
            f"{path.name}: declared as {RTF!r} but it does not start with '{{\\rtf'; fix the file or its mimetype"
        )
    return str(rtf_to_text(_decode_rtf(raw), errors="replace"))  # type: ignore[no-untyped-call]
