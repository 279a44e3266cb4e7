"""PDF text via pypdf (pure Python, maintained, the library upstream uses)."""

from collections.abc import Iterator
from pathlib import Path

from pypdf import PageObject, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, TextStringObject

from .errors import CorruptDocumentError, EncryptedDocumentError, library_failure
from .limits import ParseLimits


def _encrypted(path: Path) -> EncryptedDocumentError:
    return EncryptedDocumentError(
        f"{path.name} (application/pdf): the PDF is encrypted with a password; "
        "remove the password protection and upload it again"
    )


# text fields and list/combo boxes hold typed text; buttons hold names such as /Yes, signatures binary data
_TEXT_FIELD_TYPES = frozenset({"/Tx", "/Ch"})
# a field inherits /FT and /V through at most this many /Parent links (a hostile file may loop)
_MAX_FIELD_DEPTH = 32


def _inherited(widget: DictionaryObject, key: str) -> object:
    node: object = widget
    for _ in range(_MAX_FIELD_DEPTH):
        if not isinstance(node, DictionaryObject):
            return None
        if key in node:
            return node[key].get_object()
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
    return None


def _form_values(page: PageObject) -> Iterator[str]:
    """Text typed into the page's form fields: pypdf's text extraction skips annotations, where it lives."""
    seen: set[str] = set()
    for annotation in page.annotations or ():
        widget = annotation.get_object()
        if not isinstance(widget, DictionaryObject) or widget.get("/Subtype") != "/Widget":
            continue
        if _inherited(widget, "/FT") not in _TEXT_FIELD_TYPES:
            continue
        value = _inherited(widget, "/V")
        items = value if isinstance(value, ArrayObject) else [value]
        text = ", ".join(str(item) for item in items if isinstance(item, TextStringObject) and str(item).strip())
        # a field shown by several widgets on one page is one value
        if text and text not in seen:
            seen.add(text)
            yield text


def load_pdf(path: Path, limits: ParseLimits) -> str:
    """Text of every page and of its filled-in form fields, pages separated by a blank line."""
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            # many PDFs are "encrypted" only with an empty user password and open in every viewer
            try:
                if not reader.decrypt(""):
                    raise _encrypted(path)
            except (FileNotDecryptedError, DependencyError, NotImplementedError):
                raise _encrypted(path) from None
        pages: list[str] = []
        size = 0
        for page in reader.pages:
            text = "\n".join([(page.extract_text() or "").strip(), *_form_values(page)]).strip()
            pages.append(text)
            size += len(text)
            if size > limits.max_text_chars:
                raise limits.text_too_long(path.name, "application/pdf")
    except FileNotDecryptedError:
        raise _encrypted(path) from None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise CorruptDocumentError(
            f"{path.name}: declared as 'application/pdf' but pypdf cannot read it ({library_failure(exc)}); "
            "check the file's type or repair/re-export the PDF"
        ) from None
    return "\n\n".join(pages)
