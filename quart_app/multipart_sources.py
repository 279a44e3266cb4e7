"""Streaming parser for PUT /loadSources: each `sources` part goes straight to a spool file, never all into RAM."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from quart_app.services.errors import SourceTooLargeError
from quart_app.services.source_spool import SourceSpool, SpoolWriter

log = logging.getLogger(__name__)

FIELD_NAME = "sources"
# hand the parser ~1 MiB at a time: few thread hops, bounded memory
FEED_BYTES = 1024 * 1024
MIB = 1024 * 1024
# python-multipart's defaults (8 headers of 4 KiB a part) failed the whole batch for a file shared with a few
# hundred users (one userIds header); a header line is held in memory until it ends, so it stays bounded
MAX_PART_HEADER_BYTES = MIB
MAX_PART_HEADERS = 32


class MultipartError(Exception):
    """The body is not a multipart/form-data message we can read."""


class TooManyPartsError(Exception):
    """The request has more parts than ingest.max_parts (answered 413)."""

    def __init__(self, max_parts: int) -> None:
        super().__init__(
            f"The request has more than {max_parts} parts (ingest.max_parts); send at most {max_parts} files per "
            "request, or raise the limit in config.yaml"
        )


class UploadTooLargeError(Exception):
    """The whole request is larger than ingest.max_request_mb (answered 413)."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"The request is larger than the limit of {limit_bytes // MIB} MiB (ingest.max_request_mb); "
            "send fewer or smaller files per request, or raise the limit in config.yaml"
        )


def decode_header_value(raw: bytes) -> str:
    """Header bytes as text: UTF-8 as PHP sends it (upstream's latin-1 -> UTF-8 re-decoding), else latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@dataclass
class ReceivedPart:
    """One `sources` part: its filename (the source id), headers (lower-case names) and spool file."""

    filename: str
    headers: dict[str, str]
    path: Path | None = None
    size: int = 0
    sha256: bytes = b""
    too_large: bool = False

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


@dataclass
class _Current:
    raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    name_buf: bytearray = field(default_factory=bytearray)
    value_buf: bytearray = field(default_factory=bytearray)
    part: ReceivedPart | None = None
    writer: SpoolWriter | None = None


class SourcePartsReader:
    """Push-style: `feed()` bytes (blocking; call it in a thread), then `finish()`; `cleanup()` removes spool files."""

    def __init__(self, boundary: bytes, spool: SourceSpool, max_request_bytes: int, max_parts: int) -> None:
        self._spool = spool
        self._max_request = max_request_bytes
        self._max_parts = max_parts
        self._part_count = 0
        self._received = 0
        self.parts: list[ReceivedPart] = []
        self.ignored_fields: list[str] = []
        self._cur = _Current()
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
            max_header_count=MAX_PART_HEADERS,
            max_header_size=MAX_PART_HEADER_BYTES,
        )

    def _on_part_begin(self) -> None:
        self._part_count += 1
        if self._part_count > self._max_parts:
            # before the part's spool file exists; the caller's cleanup() removes the earlier ones
            raise TooManyPartsError(self._max_parts)
        self._cur = _Current()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._cur.name_buf += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._cur.value_buf += data[start:end]

    def _on_header_end(self) -> None:
        self._cur.raw_headers.append((bytes(self._cur.name_buf), bytes(self._cur.value_buf)))
        self._cur.name_buf.clear()
        self._cur.value_buf.clear()

    def _on_headers_finished(self) -> None:
        headers = {
            name.decode("latin-1").strip().lower(): decode_header_value(value.strip())
            for name, value in self._cur.raw_headers
        }
        disposition = next((v for n, v in self._cur.raw_headers if n.strip().lower() == b"content-disposition"), b"")
        _, options = parse_options_header(disposition.decode("latin-1"))
        name = decode_header_value(options.get(b"name", b""))
        if name != FIELD_NAME:
            self.ignored_fields.append(name)
            return
        part = ReceivedPart(filename=decode_header_value(options.get(b"filename", b"")), headers=headers)
        self.parts.append(part)
        writer = self._spool.open(part.filename)
        part.path = writer.path
        self._cur.part, self._cur.writer = part, writer

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part, writer = self._cur.part, self._cur.writer
        if part is None or writer is None:
            return
        try:
            writer.write(data[start:end])
        except SourceTooLargeError:
            # the writer dropped what it had: this file is refused, the others in the request go on
            part.too_large = True
            part.path = None
            self._cur.writer = None
        part.size = writer.size

    def _on_part_end(self) -> None:
        if self._cur.part is not None and self._cur.writer is not None:
            spooled = self._cur.writer.finish()
            self._cur.part.sha256 = spooled.sha256
        self._cur = _Current()

    def feed(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self._max_request:
            raise UploadTooLargeError(self._max_request)
        try:
            self._parser.write(data)
        except MultipartParseError as exc:
            raise MultipartError(f"the multipart body cannot be parsed: {exc}") from None

    def finish(self) -> list[ReceivedPart]:
        try:
            self._parser.finalize()
        except MultipartParseError as exc:
            raise MultipartError(f"the multipart body ended early: {exc}") from None
        if self._cur.writer is not None:
            raise MultipartError("the multipart body ended inside a part (no closing boundary)")
        return self.parts

    def cleanup(self) -> None:
        if self._cur.writer is not None:
            self._cur.writer.discard()
        for part in self.parts:
            part.remove()


def multipart_boundary(content_type: str) -> bytes | None:
    """The boundary of a multipart/form-data Content-Type, or None when it is not one."""
    ctype, options = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        return None
    return options.get(b"boundary") or None


async def read_source_parts(
    body: AsyncIterable[bytes], boundary: bytes, spool: SourceSpool, max_request_bytes: int, max_parts: int
) -> list[ReceivedPart]:
    """Stream `body` through the parser off the event loop; on any error the spool files are removed."""
    reader = SourcePartsReader(boundary, spool, max_request_bytes, max_parts)
    pending = bytearray()
    try:
        async for chunk in body:
            pending += chunk
            if len(pending) >= FEED_BYTES:
                await asyncio.to_thread(reader.feed, bytes(pending))
                pending.clear()
        if pending:
            await asyncio.to_thread(reader.feed, bytes(pending))
        parts = reader.finish()
    except BaseException:
        await asyncio.to_thread(reader.cleanup)
        raise
    if reader.ignored_fields:
        log.info("loadSources: ignored form fields %s (only 'sources' is read)", reader.ignored_fields)
    return parts
