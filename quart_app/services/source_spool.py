"""Streams incoming files to a spool directory while hashing them: memory stays bounded whatever the batch size."""

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


class SourceSpool:
    """Writes streams to temp files under `spool_dir`, refusing any larger than `max_bytes`."""

    def __init__(self, spool_dir: Path, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"SourceSpool max_bytes must be > 0, got {max_bytes}")
        self._dir = spool_dir
        self._max_bytes = max_bytes

    @property
    def spool_dir(self) -> Path:
        """Where the temp files live."""
        return self._dir

    async def spool(self, name: str, stream: AsyncIterable[bytes]) -> SpooledFile:
        """Consume `stream` into a new temp file; on any error the partial file is removed."""
        await asyncio.to_thread(self._dir.mkdir, parents=True, exist_ok=True)
        fd, raw_path = await asyncio.to_thread(tempfile.mkstemp, prefix="src-", suffix=".part", dir=self._dir)
        path = Path(raw_path)
        digest = hashlib.sha256()
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                async for piece in stream:
                    size += len(piece)
                    if size > self._max_bytes:
                        raise SourceTooLargeError(name, self._max_bytes)
                    digest.update(piece)
                    pending.append(piece)
                    pending_size += len(piece)
                    if pending_size >= _WRITE_BUFFER:
                        await self._write(name, handle, pending)
                        pending, pending_size = [], 0
                if pending:
                    await self._write(name, handle, pending)
        except BaseException:
            # too large, cancelled or a broken stream: never leave a partial file behind
            _discard(path)
            raise
        return SpooledFile(path, size, digest.digest())

    async def _write(self, name: str, handle: BinaryIO, pieces: list[bytes]) -> None:
        try:
            await asyncio.to_thread(_write_all, handle, pieces)
        except OSError as exc:
            raise SpoolError(f"could not spool file {name!r} to {self._dir}: {exc}; check free disk space") from exc


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _write_all(handle: BinaryIO, pieces: list[bytes]) -> None:
    handle.writelines(pieces)


def file_sha256(path: Path) -> tuple[int, bytes]:
    """Size and sha256 of a file already on disk, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(_WRITE_BUFFER):
            digest.update(block)
            size += len(block)
    return size, digest.digest()
