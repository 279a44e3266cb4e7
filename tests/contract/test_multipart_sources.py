"""The streaming /loadSources parser on Guzzle-shaped bodies: headers, non-ASCII titles, size limits, cleanup."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from contract_kit import SourcePart, guzzle_multipart

from quart_app.multipart_sources import (
    MultipartError,
    TooManyPartsError,
    UploadTooLargeError,
    decode_header_value,
    multipart_boundary,
    read_source_parts,
)
from quart_app.services.source_spool import SourceSpool

TITLE = "Überblick \u2013 Notizen 日本.md"


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _read(  # type: ignore[no-untyped-def]
    body: bytes, content_type: str, spool: Path, chunk: int = 7, part_mb: float = 1, req_mb: float = 4, parts: int = 100
):
    boundary = multipart_boundary(content_type)
    assert boundary is not None
    return await read_source_parts(
        _chunks(body, chunk), boundary, SourceSpool(spool, int(part_mb * 2**20)), int(req_mb * 2**20), parts
    )


async def test_guzzle_parts_arrive_with_headers_and_content_on_disk(tmp_path: Path) -> None:
    parts = [
        SourcePart("files__default: 555", b"hello world", user_ids=["alice", "bob"], title=TITLE),
        SourcePart("files__default: 556", b"\x00\x01binary\r\n--not-a-boundary", title=""),
        SourcePart("content__notes: 7", b"x" * 100_000, user_ids=None, beta_user_id="carol", mimetype="text/markdown"),
    ]
    body, content_type = guzzle_multipart(parts)
    received = await _read(body, content_type, tmp_path)
    assert [p.filename for p in received] == ["files__default: 555", "files__default: 556", "content__notes: 7"]
    first = received[0]
    assert first.headers["userids"] == "alice,bob"
    assert first.headers["title"] == TITLE
    assert first.headers["type"] == "text/plain" and first.headers["modified"] == "1733000000"
    assert first.headers["provider"] == "files__default"
    assert first.headers["content-length"] == "11"
    assert first.path is not None and first.path.read_bytes() == b"hello world" and first.size == 11
    assert received[1].headers["title"] == ""
    assert received[1].path is not None and received[1].path.read_bytes() == b"\x00\x01binary\r\n--not-a-boundary"
    assert received[2].headers["userid"] == "carol" and "userids" not in received[2].headers
    assert received[2].size == 100_000
    assert all(p.path is not None and p.path.parent == tmp_path for p in received)


def test_latin1_decoded_values_are_turned_back_into_utf8() -> None:
    assert decode_header_value(TITLE.encode("utf-8")) == TITLE
    # a value that is not UTF-8 keeps its latin-1 reading instead of failing the part
    assert decode_header_value("Café".encode("latin-1")) == "Café"


async def test_a_part_over_the_limit_is_flagged_and_nothing_is_kept(tmp_path: Path) -> None:
    parts = [SourcePart("files__default: 1", b"a" * 300_000), SourcePart("files__default: 2", b"small")]
    body, content_type = guzzle_multipart(parts)
    received = await _read(body, content_type, tmp_path, chunk=65536, part_mb=0.25)
    assert received[0].too_large and received[0].path is None
    assert not received[1].too_large and received[1].path is not None
    assert sorted(os.listdir(tmp_path)) == [received[1].path.name]


async def test_a_request_over_the_limit_raises_and_leaves_no_file(tmp_path: Path) -> None:
    body, content_type = guzzle_multipart([SourcePart(f"files__default: {i}", b"b" * 200_000) for i in range(8)])
    with pytest.raises(UploadTooLargeError, match="larger than the limit of 1 MiB"):
        await _read(body, content_type, tmp_path, chunk=65536, part_mb=1, req_mb=1)
    assert os.listdir(tmp_path) == []


async def test_more_parts_than_the_limit_raise_and_leave_no_file(tmp_path: Path) -> None:
    body, content_type = guzzle_multipart([SourcePart(f"files__default: {i}", b"tiny") for i in range(26)])
    assert len(await _read(body, content_type, tmp_path / "accepted", chunk=65536, parts=26)) == 26
    with pytest.raises(TooManyPartsError, match=r"more than 25 parts \(ingest.max_parts\); send at most 25 files"):
        await _read(body, content_type, tmp_path / "refused", chunk=65536, parts=25)
    assert os.listdir(tmp_path / "refused") == []


async def test_a_truncated_body_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    body, content_type = guzzle_multipart([SourcePart("files__default: 1", b"c" * 5000)])
    with pytest.raises(MultipartError):
        await _read(body[:3000], content_type, tmp_path)
    assert os.listdir(tmp_path) == []


def test_boundary_only_for_multipart_form_data() -> None:
    assert multipart_boundary("multipart/form-data; boundary=abc123") == b"abc123"
    assert multipart_boundary("application/json") is None
    assert multipart_boundary("") is None
