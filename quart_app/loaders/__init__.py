"""Document loaders: file + mimetype -> normalized text in-process, or -> chunks in a pool of worker processes."""

from .errors import (
    CorruptDocumentError,
    DecompressionBombError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    LoaderError,
    ParseMemoryError,
    ParsePoolClosedError,
    ParsePoolError,
    ParserCrashedError,
    ParseTimeoutError,
    UnsupportedMimetypeError,
)
from .limits import ParseLimits
from .normalize import normalize_text
from .parse_pool import ParsePool
from .registry import SUPPORTED_MIMETYPES, canonical_mimetype, extract_text
from .worker_protocol import DocumentChunk

__all__ = [
    "SUPPORTED_MIMETYPES",
    "CorruptDocumentError",
    "DecompressionBombError",
    "DocumentChunk",
    "DocumentTooLargeError",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "LoaderError",
    "ParseLimits",
    "ParseMemoryError",
    "ParsePool",
    "ParsePoolClosedError",
    "ParsePoolError",
    "ParseTimeoutError",
    "ParserCrashedError",
    "UnsupportedMimetypeError",
    "canonical_mimetype",
    "extract_text",
    "normalize_text",
]
