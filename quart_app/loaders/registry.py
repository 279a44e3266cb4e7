"""Mimetype -> loader registry and the in-process entry point `extract_text`."""

import contextlib
import encodings
import functools
import importlib
import logging
import pkgutil
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

from .errors import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    LoaderError,
    UnsupportedMimetypeError,
    library_failure,
)
from .failure_site import failure_site, loader_name
from .limits import MIB, ParseLimits
from .normalize import normalize_text

logger = logging.getLogger(__name__)

Loader = Callable[[Path, ParseLimits], str]

# mimetype -> "module:function" in this package, imported on first use: the app imports this package for
# ParsePool and must not pull in pypdf, openpyxl & co.; the parse workers preload them instead
LOADERS: Mapping[str, str] = {
    "text/plain": "plain_loader:load_plain",
    "text/markdown": "plain_loader:load_plain",
    "application/json": "plain_loader:load_plain",
    "text/x-rst": "plain_loader:load_plain",
    "text/org": "plain_loader:load_plain",
    "application/pdf": "pdf_loader:load_pdf",
    "text/csv": "tabular_loader:load_csv",
    "application/epub+zip": "epub_loader:load_epub",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "word_loader:load_docx",
    "application/vnd.ms-powerpoint": "presentation_loader:load_ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "presentation_loader:load_pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "tabular_loader:load_xlsx",
    "application/vnd.oasis.opendocument.spreadsheet": "tabular_loader:load_ods",
    "application/vnd.ms-excel.sheet.macroEnabled.12": "tabular_loader:load_xlsm",
    "application/vnd.oasis.opendocument.text": "word_loader:load_odt",
    "text/rtf": "markup_loader:load_rtf",
    "application/xml": "markup_loader:load_xml",
    "message/rfc822": "email_loader:load_eml",
    "application/vnd.ms-outlook": "email_loader:load_msg",
    "text/html": "markup_loader:load_html",
}


@functools.cache
def _import_loader(spec: str) -> Loader:
    module_name, _, attr = spec.partition(":")
    loader: Loader = getattr(importlib.import_module(f"{__package__}.{module_name}"), attr)
    return loader


# imported by the libraries on first use; a parse worker imports them before it drops to the parser user, which
# may not be able to read the interpreter's files (a Python installed under /root)
_LAZY_IMPORTS = (
    "email.generator",
    "importlib.readers",
    "odfdo.templates",
    "openpyxl.packaging.extended",
    "pypdf._codecs._codecs",
    "pypdf.filters",
)


def preload_loaders() -> None:
    """Import every loader and codec now (parse workers do this at start, before they drop privileges)."""
    for spec in LOADERS.values():
        _import_loader(spec)
    for module in _LAZY_IMPORTS:
        importlib.import_module(module)
    # charset detection may try any codec
    for codec in pkgutil.iter_modules(encodings.__path__):
        with contextlib.suppress(ImportError):  # mbcs, oem: Windows only
            importlib.import_module(f"encodings.{codec.name}")


# the 19 mimetypes of upstream's list plus text/html, spelled as upstream does
SUPPORTED_MIMETYPES: frozenset[str] = frozenset(LOADERS)
# mimetypes are case-insensitive (RFC 2045); upstream's list has 'macroEnabled'
_BY_KEY: Mapping[str, str] = {mimetype.lower(): spec for mimetype, spec in LOADERS.items()}
_SPELLING: Mapping[str, str] = {mimetype.lower(): mimetype for mimetype in LOADERS}


def canonical_mimetype(mimetype: str) -> str:
    """'Text/Plain; charset=utf-8' -> 'text/plain'; supported types keep upstream's spelling ('macroEnabled')."""
    key = mimetype.split(";", 1)[0].strip().lower()
    return _SPELLING.get(key, key)


def provider_item_mimetype(document_type: str) -> str:
    """A content provider's item's type as a loader reads it: a word such as 'E-Mail' or 'Bookmark' is text."""
    return document_type if canonical_mimetype(document_type) in SUPPORTED_MIMETYPES else "text/plain"


def extract_text(
    path: Path, mimetype: str, limits: ParseLimits | None = None, loaders: Mapping[str, Loader] | None = None
) -> str:
    """Parse one file in this process and return its normalized text (see `normalize_text`).

    Raises a `LoaderError` subclass for every problem with the file itself (a text longer than
    `limits.max_text_chars` too); `MemoryError` is left to the caller (the parse pool replaces the worker).
    `loaders` adds or overrides registry entries.
    """
    limits = limits or ParseLimits()
    kind = canonical_mimetype(mimetype)
    extra = {mimetype.lower(): loader for mimetype, loader in (loaders or {}).items()}
    spec = _BY_KEY.get(kind.lower())
    loader = extra.get(kind.lower()) or (_import_loader(spec) if spec is not None else None)
    if loader is None:
        raise UnsupportedMimetypeError(
            f"{path.name}: mimetype {mimetype!r} is not supported; supported are: {', '.join(sorted(LOADERS))}"
        )
    size = path.stat().st_size
    if size == 0:
        raise EmptyDocumentError(f"{path.name} ({kind}): the file is empty (0 bytes); nothing to index")
    if size > limits.max_file_mb * MIB:
        raise DocumentTooLargeError(
            f"{path.name} ({kind}): {size / MIB:.1f} MiB is above max_file_mb={limits.max_file_mb}; "
            "raise the limit or split the file"
        )
    # library warnings about sloppy files are not actionable and must not abort a parse
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            raw = loader(path, limits)
        except (LoaderError, MemoryError):
            raise
        except Exception as exc:
            # the class and where, never the message: a library's quotes the file (the admin's lead to a bug report)
            logger.warning(
                "parse of %s (%s) failed in its loader %s: %s; its message is withheld (it may quote the file)",
                path.name,
                kind,
                loader_name(loader),
                failure_site(exc),
            )
            raise CorruptDocumentError(
                f"{path.name}: declared as {kind!r} but it could not be parsed ({library_failure(exc)}); "
                "the file is damaged or of another type: check it and its mimetype"
            ) from None
    text = normalize_text(raw)
    if len(text) > limits.max_text_chars:
        raise limits.text_too_long(path.name, kind)
    if not text:
        raise EmptyDocumentError(
            f"{path.name} ({kind}): no text could be extracted (e.g. a scanned PDF without a text layer); "
            "run OCR on it or ignore it"
        )
    return text
