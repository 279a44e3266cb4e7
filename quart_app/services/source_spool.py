"""The one spooler: uploaded parts and fetched files stream to disk while hashed; memory stays bounded.

`SourceSpool.open()` gives a blocking `SpoolWriter` (the multipart parser feeds it from a worker thread);
`SourceSpool.spool()` drains an async byte stream (a download from Nextcloud) through the same writer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from quart_app.services.errors import SourceTooLargeError, SpoolError

logger = logging.getLogger(__name__)

# bytes gathered before one disk write; keeps thread hand-offs few without holding much memory
_WRITE_BUFFER = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SpooledFile:
    """A file on disk in the spool directory, with its size and sha256."""

    path: Path
    size: int
    sha256: bytes

    def remove(self) -> None:
        """Delete the spooled file; missing is fine."""
        self.path.unlink(missing_ok=True)


class SpoolWriter:
    """One file being written; blocking calls. Too large -> SourceTooLargeError and the partial file is gone."""

    def __init__(self, name: str, path: Path, handle: BinaryIO, max_bytes: int, spool_dir: Path) -> None:
        self.name = name
        self.path = path
        self._handle = handle
        self._max_bytes = max_bytes
        self._spool_dir = spool_dir
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self._max_bytes:
            self.discard()
            raise SourceTooLargeError(self.name, self._max_bytes)
        self._digest.update(piece)
        try:
            self._handle.write(piece)
        except OSError as exc:
            self.discard()
            raise SpoolError(
                f"could not spool file {self.name!r} to {self._spool_dir}: {exc}; check free disk space"
            ) from exc

    def write_all(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.write(piece)

    def finish(self) -> SpooledFile:
        self._handle.close()
        return SpooledFile(self.path, self.size, self._digest.digest())

    def discard(self) -> None:
        """Close and delete the partial file; safe to call twice."""
        self._handle.close()
        self.path.unlink(missing_ok=True)


class SourceSpool:
    """Writes files to temp files under `spool_dir`, refusing any larger than `max_bytes`."""

    def __init__(self, spool_dir: Path, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"SourceSpool max_bytes must be > 0, got {max_bytes}")
        self._dir = spool_dir
        self.max_bytes = max_bytes

    @property
    def spool_dir(self) -> Path:
        """Where the temp files live."""
        return self._dir

    def open(self, name: str) -> SpoolWriter:
        """A new temp file for `name` (blocking)."""
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            fd, raw_path = tempfile.mkstemp(prefix="src-", suffix=".part", dir=self._dir)
        except OSError as exc:
            raise SpoolError(
                f"could not spool file {name!r} to {self._dir}: {exc.strerror or exc}; check free disk space and that"
                " the directory is writable"
            ) from exc
        return SpoolWriter(name, Path(raw_path), os.fdopen(fd, "wb"), self.max_bytes, self._dir)

    async def spool(self, name: str, stream: AsyncIterable[bytes]) -> SpooledFile:
        """Consume `stream` into a new temp file; on any error (or cancellation) the partial file is removed."""
        # opened on the loop (one mkstemp): in a thread, a cancellation could strand the open file
        writer = self.open(name)
        pending: list[bytes] = []
        pending_size = 0
        try:
            async for piece in stream:
                pending.append(piece)
                pending_size += len(piece)
                # check the limit as bytes arrive, not only at the next disk write
                if writer.size + pending_size > self.max_bytes or pending_size >= _WRITE_BUFFER:
                    await asyncio.to_thread(writer.write_all, pending)
                    pending, pending_size = [], 0
            if pending:
                await asyncio.to_thread(writer.write_all, pending)
            return await asyncio.to_thread(writer.finish)
        except BaseException:
            # too large, cancelled or a broken stream: never leave a partial file behind
            writer.discard()
            raise


def remove_leftovers(spool_dir: Path) -> int:
    """Delete spool files a crashed process left behind (call before anything spools); how many were removed."""
    removed = 0
    for leftover in spool_dir.glob("src-*.part"):
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def file_sha256(path: Path) -> tuple[int, bytes]:
    """Size and sha256 of a file already on disk, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(_WRITE_BUFFER):
            digest.update(block)
            size += len(block)
    return size, digest.digest()
