"""Local files as the PHP app's sources: walk folders, detect mimetypes, stable source ids, batches of 25."""

from __future__ import annotations

import hashlib
import mimetypes
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from appliance.app_client import SourcePart
from quart_app.loaders.registry import SUPPORTED_MIMETYPES, canonical_mimetype

# the provider of files indexed from this machine (`ccb index`), beside the PHP app's files__default
LOCAL_PROVIDER = "ccb__files"
# CC_MAX_FILES of the PHP app's IndexerJob (4.1+); the size cap keeps one request well under ingest.max_request_mb
BATCH_FILES = 25
BATCH_BYTES = 64 * 1024 * 1024
# types Python's mimetypes table does not know, spelled as the loaders expect
_EXTRA_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".rst": "text/x-rst",
    ".org": "text/org",
    ".eml": "message/rfc822",
    ".msg": "application/vnd.ms-outlook",
    ".epub": "application/epub+zip",
    ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".rtf": "text/rtf",
}


@dataclass(frozen=True)
class LocalFile:
    """A file found under a path given to `ccb index`; why it is not sent: `skipped` (a type no loader reads, not an
    error) or `error` (it cannot be read)."""

    path: Path
    title: str
    mimetype: str
    size: int
    skipped: str | None = None
    error: str | None = None

    @property
    def source_id(self) -> str:
        return local_source_id(self.path)


def local_source_id(path: Path) -> str:
    """`ccb__files: <hash of the absolute path>`: the same file gets the same id on every run (a re-index updates)."""
    digest = hashlib.sha256(str(path.absolute()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return f"{LOCAL_PROVIDER}: {digest}"


def display_name(path: Path | str) -> str:
    """`path` as valid UTF-8 text: bytes of a name that are not UTF-8 become U+FFFD (headers and JSON need text)."""
    return os.fsencode(path).decode("utf-8", "replace")


def detect_mimetype(path: Path) -> str:
    """The mimetype the loaders know the file by, from its extension; "" when unknown."""
    found = _EXTRA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name, strict=False)[0]
    return canonical_mimetype(found) if found else ""


def _describe(path: Path, title: str) -> LocalFile:
    mimetype = detect_mimetype(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return LocalFile(path, title, mimetype, 0, error=f"cannot read it: {exc.strerror}")
    if not mimetype:
        return LocalFile(path, title, mimetype, size, f"unknown file type (extension {path.suffix or 'none'!r})")
    if mimetype not in SUPPORTED_MIMETYPES:
        return LocalFile(path, title, mimetype, size, f"unsupported file type {mimetype}")
    if not os.access(path, os.R_OK):
        return LocalFile(path, title, mimetype, size, error="cannot read it: permission denied")
    return LocalFile(path, title, mimetype, size)


def walk(paths: Sequence[Path], on_folder_error: Callable[[OSError], None] | None = None) -> Iterator[LocalFile]:
    """Every regular file under `paths` in name order (hidden ones and symlinks skipped), titled relative to the
    folder given (`docs/report.pdf`) or by name for a file given alone. A folder that cannot be listed is passed to
    `on_folder_error` (its `filename` is the folder) and left out."""
    for root in paths:
        if root.is_file():
            yield _describe(root, display_name(root.name))
            continue
        base = root.absolute().parent
        for folder, dirs, files in os.walk(root, onerror=on_folder_error):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(folder) / name
                if name.startswith(".") or path.is_symlink() or not path.is_file():
                    continue
                yield _describe(path, display_name(path.absolute().relative_to(base)))


def batches(files: Sequence[LocalFile]) -> Iterator[list[LocalFile]]:
    """At most BATCH_FILES files and about BATCH_BYTES per request, as the PHP app's IndexerJob sends them."""
    batch: list[LocalFile] = []
    size = 0
    for file in files:
        if batch and (len(batch) >= BATCH_FILES or size + file.size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(file)
        size += file.size
    if batch:
        yield batch


def source_part(file: LocalFile, users: Sequence[str]) -> SourcePart:
    """The multipart part for `file`, readable by `users`; the content is read now."""
    return SourcePart(
        file.source_id,
        file.path.read_bytes(),
        user_ids=tuple(users),
        title=file.title,
        mimetype=file.mimetype,
        modified=int(file.path.stat().st_mtime),
        provider=LOCAL_PROVIDER,
    )
