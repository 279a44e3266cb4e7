"""Errors raised while turning a document file into text.

Every per-file problem is a `LoaderError`: the ingest service stores its message on the document row and
reports the source as failed; the rest of the batch is unaffected. Messages name the file, the mimetype and
what to do about it.
"""

from __future__ import annotations

import signal


def library_failure(exc: BaseException) -> str:
    """A parser library's exception as a document's error names it: its type only. Its message may quote the file's
    text (openpyxl: "could not convert string to float: '<a cell>'", pypdf: the repr of a dictionary of the file), and
    a document's error goes to the logs, /status and the PHP app."""
    return type(exc).__name__


class LoaderError(Exception):
    """A single document could not be turned into text; other documents are unaffected."""


class UnsupportedMimetypeError(LoaderError):
    """The declared mimetype has no loader."""


class CorruptDocumentError(LoaderError):
    """The file is damaged, truncated or not of the declared mimetype."""


class EncryptedDocumentError(LoaderError):
    """The file is password-protected and cannot be read without the password."""


class DecompressionBombError(LoaderError):
    """A zip-based file would expand beyond the configured size or compression-ratio limits."""


class DocumentTooLargeError(LoaderError):
    """The file is larger than the configured maximum file size."""


class EmptyDocumentError(LoaderError):
    """The file is empty or contains no extractable text."""


class ParseTimeoutError(LoaderError):
    """Parsing took longer than the per-file timeout; the worker was killed."""


class ParseMemoryError(LoaderError):
    """Parsing needed more memory than the per-worker cap; the worker was replaced."""


class ParserCrashedError(LoaderError):
    """The worker parsing the file died without a word on every attempt (not at a limit the pool enforces)."""

    @classmethod
    def on_every_attempt(cls, name: str, mimetype: str, deaths: list[str]) -> ParserCrashedError:
        """The error for a file whose worker died on every attempt, each `deaths` entry saying how."""
        if all(death == f"signal {signal.SIGKILL.name}" for death in deaths):
            # the pool's own kills (timeout, memory) never get here, so the kill came from outside the app
            why = "something outside the app killed it each time (an administrator, or the system when short of memory)"
        else:
            why = "the file is probably damaged: check or re-save it"
        return cls(
            f"{name} ({mimetype}): the parser crashed repeatedly, on all {len(deaths)} attempts "
            f"({', '.join(deaths)}); {why}"
        )


class ParsePoolError(Exception):
    """The parse pool itself is unusable (not a per-file problem)."""


class ParsePoolClosedError(ParsePoolError):
    """The parse pool was used before `open()` or after `close()`."""
