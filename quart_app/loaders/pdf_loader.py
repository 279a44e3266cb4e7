"""PDF text via pypdf (pure Python, maintained, the library upstream uses)."""

from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError

from .errors import CorruptDocumentError, EncryptedDocumentError, library_failure
from .limits import ParseLimits


def _encrypted(path: Path) -> EncryptedDocumentError:
    return EncryptedDocumentError(
        f"{path.name} (application/pdf): the PDF is encrypted with a password; "
        "remove the password protection and upload it again"
    )


def load_pdf(path: Path, limits: ParseLimits) -> str:
    """Text of every page, pages separated by a blank line."""
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
            text = (page.extract_text() or "").strip()
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
