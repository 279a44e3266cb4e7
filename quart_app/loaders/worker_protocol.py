"""Messages between the app and a parse worker.

App -> worker, pickled (the worker trusts the app): one `WorkerSetup`, then per file `(name, mimetype)` followed by
the open file as a descriptor (SCM_RIGHTS), or `None` to stop.

Worker -> app, JSON: the worker runs parsers of untrusted files, so the app never unpickles what it sends.
`["ready", pid]` once (or `["failed", detail]`), then per file any number of `["chunks", [[text, start, tokens,
header], ...]]` and one of `["done", count]`, `["error", class name, message]` (a message for a loader error only) or
`["memory", detail]` (the worker then exits).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quart_app.chunking.chunker import embedding_text

from .errors import (
    CorruptDocumentError,
    DecompressionBombError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    LoaderError,
    UnsupportedMimetypeError,
)
from .limits import ParseLimits
from .worker_identity import WorkerIdentity

if TYPE_CHECKING:
    from quart_app.chunking.chunker_spec import ChunkerSpec

# a worker flushes its chunks at about this many characters; the app refuses a message above MAX_MESSAGE_BYTES
BATCH_CHARS = 1_000_000
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# a loader error's message names the file and may hold a library's (shape only); keep what is stored and logged short
_MAX_ERROR_CHARS = 1000
# of an exception's class name: a worker taken over could send any length
_MAX_NAME_CHARS = 100
_LOADER_ERRORS: dict[str, type[LoaderError]] = {
    cls.__name__: cls
    for cls in (
        UnsupportedMimetypeError,
        CorruptDocumentError,
        EncryptedDocumentError,
        DecompressionBombError,
        DocumentTooLargeError,
        EmptyDocumentError,
    )
}


class MalformedReplyError(Exception):
    """A worker sent something that is not a message of this protocol (a bug, or a parser taken over)."""


@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """Everything a worker needs before its first file."""

    limits: ParseLimits
    chunker: ChunkerSpec
    # None: keep the app's user (not root, or no parser user; see worker_identity.parser_identity)
    identity: WorkerIdentity | None
    # mimetype -> "module:function", imported by the worker (plugins and fault-injection tests)
    extra_loaders: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DocumentChunk:
    """One chunk of a parsed document: its text, its offset in the normalized text, its tokens, the sha256 of what is
    embedded, its header (section titles)."""

    text: str
    start: int
    # tokens of embedding_text(header, text)
    token_count: int
    # of embedding_text(header, text), computed by the app, not the worker: a parser taken over must not choose
    # embedding-cache keys
    text_hash: bytes
    header: str = ""


def encode(message: list[Any]) -> bytes:
    """A worker message as bytes (a text that is not valid Unicode fails here, as a per-file error)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode(data: bytes) -> tuple[str, list[Any]]:
    """Kind and arguments of a worker message."""
    try:
        message = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise MalformedReplyError(f"not a JSON message ({exc})") from None
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise MalformedReplyError("not a [kind, ...] list")
    return message[0], message[1:]


def checked_chunks(items: Any, chunk_tokens: int) -> list[DocumentChunk]:
    """The chunks of a "chunks" message, each checked for shape and token budget, with their sha256."""
    if not isinstance(items, list):
        raise MalformedReplyError("a chunks message without a list of chunks")
    chunks: list[DocumentChunk] = []
    for item in items:
        match item:
            case [str() as text, int() as start, int() as tokens, str() as header] if (
                text and start >= 0 and 0 < tokens <= chunk_tokens
            ):
                embedded = embedding_text(header, text).encode("utf-8")
                chunks.append(DocumentChunk(text, start, tokens, hashlib.sha256(embedded).digest(), header))
            case _:
                raise MalformedReplyError(f"a chunk that is not [text, start >= 0, 1..{chunk_tokens} tokens, header]")
    return chunks


def error_name(exc: BaseException) -> str:
    """How a worker names an exception for the app (`worker_error` turns it back)."""
    if isinstance(exc, OSError):
        return "OSError"
    return type(exc).__name__


def error_message(exc: BaseException) -> str:
    """What a worker says of an exception besides its name: a loader error's own message (ours), nothing for any
    other (a library's message may quote the file)."""
    return str(exc) if isinstance(exc, LoaderError) else ""


def worker_error(name: str, message: str, document: str, mimetype: str) -> Exception:
    """The exception the app raises for a worker's `["error", name, message]` about `document` (the pool's name).

    Only a loader error keeps the message: any other's is withheld (a library's may quote the file, and a document's
    error goes to the logs, /status and the PHP app)."""
    loader_error = _LOADER_ERRORS.get(name)
    if loader_error is not None:
        return loader_error(message[:_MAX_ERROR_CHARS])
    withheld = "its message is withheld: it may quote the file"
    if name == "OSError":
        # reading the handed file failed (I/O): the ingest retries it later
        return OSError(f"{document} ({mimetype}): the parse worker could not read the file ({withheld}); it is retried")
    return CorruptDocumentError(
        f"{document} ({mimetype}): parsing failed with {name[:_MAX_NAME_CHARS]} outside the file's loader ({withheld});"
        " check the file, and report a bug if it opens fine elsewhere"
    )
