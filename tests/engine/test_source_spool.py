"""The source spool: streamed to disk with hash and size, a size limit, no partial files left behind."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from quart_app.services.errors import SourceTooLargeError
from quart_app.services.source_spool import SourceSpool


async def _stream(pieces: int, size: int) -> AsyncIterator[bytes]:
    for i in range(pieces):
        yield bytes([i % 256]) * size


async def test_spooled_file_has_the_bytes_size_and_sha256(tmp_path: Path) -> None:
    spool = SourceSpool(tmp_path / "spool", max_bytes=10 * 1024 * 1024)
    spooled = await spool.spool("files__default: 1", _stream(40, 100_000))
    expected = b"".join(bytes([i % 256]) * 100_000 for i in range(40))
    assert spooled.path.read_bytes() == expected
    assert spooled.size == len(expected)
    assert spooled.sha256 == hashlib.sha256(expected).digest()
    spooled.remove()
    assert list((tmp_path / "spool").iterdir()) == []


async def test_too_large_file_is_refused_and_removed(tmp_path: Path) -> None:
    spool = SourceSpool(tmp_path / "spool", max_bytes=250_000)
    with pytest.raises(SourceTooLargeError) as info:
        await spool.spool("files__default: 2", _stream(10, 100_000))
    assert str(info.value) == (
        "file 'files__default: 2' is larger than the limit of 250000 bytes; raise ingest.max_part_mb or skip it"
    )
    assert list((tmp_path / "spool").iterdir()) == []


async def test_broken_stream_leaves_no_partial_file(tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise ConnectionResetError("client went away")

    spool = SourceSpool(tmp_path / "spool", max_bytes=1_000_000)
    with pytest.raises(ConnectionResetError, match="client went away"):
        await spool.spool("files__default: 3", broken())
    assert list((tmp_path / "spool").iterdir()) == []
