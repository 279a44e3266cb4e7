"""PUT /loadSources over real sockets: an upload waiting for a parser slot stays in the socket (TCP backpressure), not
in the app's memory, and goes through once the slot frees."""

from __future__ import annotations

import http.client
import itertools
import json
import select
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from contract_kit import SourcePart, signed_headers
from live_app import start_live_app
from waiting import wait_for

from appliance.app_client import guzzle_boundary

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
TEXT = b"The Ethical AI Rating gives a green label when the model, its data and the code are all open."
# the waiting upload; Quart used to read all of it into memory while the request waited for the parser slot
WAITING_UPLOAD_BYTES = 160 * MIB
# more than the route feeds the parser at once (1 MiB), so the first request's part is spooled while it stalls
PADDING_BYTES = 2 * MIB
# no progress on a non-blocking send for this long: the server has stopped reading
STALL_S = 3.0


class Body:
    """A multipart body of bytes and runs of filler, sent in chunks of at most 1 MiB without building it whole."""

    def __init__(self) -> None:
        self.boundary = guzzle_boundary()
        self.segments: list[bytes | int] = []

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def part(self, part: SourcePart, size: int | None = None) -> Body:
        """A `sources` part as Guzzle writes it; `size` bytes of filler instead of the part's content when given."""
        lines = [f"--{self.boundary}", *(f"{name}: {value}" for name, value in part.headers())]
        lines.append(f'Content-Disposition: form-data; name="sources"; filename="{part.source_id}"')
        content: bytes | int = part.content if size is None else size
        lines.append(f"Content-Length: {content if isinstance(content, int) else len(content)}")
        self.segments += [("\r\n".join(lines) + "\r\n\r\n").encode(), content, b"\r\n"]
        return self

    def field(self, name: str, size: int) -> Body:
        """A form field the route ignores, `size` bytes long."""
        head = f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        self.segments += [head.encode(), size, b"\r\n"]
        return self

    def closing(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()

    def length(self) -> int:
        return sum(s if isinstance(s, int) else len(s) for s in self.segments) + len(self.closing())

    def chunks(self, with_closing: bool = True) -> Iterator[bytes]:
        for segment in self.segments:
            if isinstance(segment, bytes):
                yield segment
                continue
            for start in range(0, segment, MIB):
                yield b"z" * min(MIB, segment - start)
        if with_closing:
            yield self.closing()


class Upload:
    """One PUT /loadSources on its own socket, its body pushed as far as the server takes it."""

    def __init__(self, port: int, body: Body, chunks: Iterator[bytes]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        # a small send buffer: what the client holds cannot hide what the server has read
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        headers = {
            **signed_headers(),
            "Host": f"127.0.0.1:{port}",
            "Content-Type": body.content_type,
            "Content-Length": str(body.length()),
        }
        head = "PUT /loadSources HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self._chunks = chunks
        self._pending = memoryview(head.encode())
        self.sent = -len(head)

    def add(self, more: Iterable[bytes]) -> None:
        """More body to send after what was given."""
        self._chunks = itertools.chain(self._chunks, more)

    def push(self, stall_s: float) -> bool:
        """Send until everything went (True) or the server took nothing for `stall_s` seconds (False)."""
        self.sock.setblocking(False)
        while True:
            if not self._pending:
                following = next(self._chunks, None)
                if following is None:
                    return True
                self._pending = memoryview(following)
            try:
                sent = self.sock.send(self._pending)
            except BlockingIOError:
                if not select.select([], [self.sock], [], stall_s)[1]:
                    return False
                continue
            self._pending = self._pending[sent:]
            self.sent += sent

    def response(self) -> tuple[int, Any]:
        self.sock.setblocking(True)
        self.sock.settimeout(300)
        answer = http.client.HTTPResponse(self.sock)
        answer.begin()
        status, body = answer.status, json.loads(answer.read())
        self.sock.close()
        return status, body


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def test_an_upload_waiting_for_a_parser_slot_stays_in_the_socket(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    storage = tmp_path / "storage"
    config = {
        "embedding": {"base_url": embedder_url, "workers": 1, "chunk_tokens": 96},
        "llm": {"extractive": {}},
        # one parser slot: the first upload holds it while the second waits
        "ingest": {"parse_workers": 1, "concurrent_requests": 1, "max_part_mb": 4},
    }
    base, server = start_live_app(storage, fresh_dsn, config, tmp_path / "server.log")
    try:
        assert server.process is not None
        port = int(base.rsplit(":", 1)[1])
        # refused before its body is read (not enabled yet): a body larger than hypercorn's queue is drained, so
        # the keep-alive connection serves the next request
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        refused = Body().field("padding", 900 * 1024).part(SourcePart("files__default: 9", TEXT))
        headers = {**signed_headers(), "Content-Type": refused.content_type}
        connection.request("PUT", "/loadSources", body=b"".join(refused.chunks()), headers=headers)
        answer = connection.getresponse()
        assert answer.status == 503 and answer.getheader("Connection") != "close"
        answer.read()
        opened = connection.sock
        connection.request("PUT", "/enabled?enabled=1", headers=signed_headers())
        assert connection.getresponse().status == 200 and connection.sock is opened
        connection.close()

        # the first upload takes the slot and stalls before its closing boundary, its part already spooled
        holder_body = Body().part(SourcePart("files__default: 1", TEXT)).field("padding", PADDING_BYTES)
        holder = Upload(port, holder_body, holder_body.chunks(with_closing=False))
        assert holder.push(stall_s=60)
        spool = storage / "spool"
        wait_for(
            lambda: len(list(spool.glob("src-*.part"))) == 1, 120, "the first upload's part in the spool", interval=0.05
        )
        rss_before = _rss_bytes(server.process.pid)

        # the second upload waits for the slot: the server must stop reading it instead of buffering it
        waiting_body = Body().part(SourcePart("files__default: 2", b""), size=WAITING_UPLOAD_BYTES)
        waiting_body.part(SourcePart("files__default: 3", TEXT))
        waiting = Upload(port, waiting_body, waiting_body.chunks())
        assert not waiting.push(stall_s=STALL_S), "the server read the whole waiting upload"
        grown = _rss_bytes(server.process.pid) - rss_before
        assert waiting.sent < WAITING_UPLOAD_BYTES // 4, f"the server took {waiting.sent // MIB} MiB of the upload"
        assert grown < WAITING_UPLOAD_BYTES // 4, f"the app grew by {grown // MIB} MiB while the upload waited"
        assert len(list(spool.glob("src-*.part"))) == 1

        # the slot frees: the first upload completes, then the waiting one is read and indexed
        holder.add([holder_body.closing()])
        assert holder.push(stall_s=60)
        assert holder.response() == (200, {"loaded_sources": ["files__default: 1"], "sources_to_retry": []})
        assert waiting.push(stall_s=120)
        # the 160 MiB file is over ingest.max_part_mb and refused alone; the small one beside it is indexed
        assert waiting.response() == (200, {"loaded_sources": ["files__default: 3"], "sources_to_retry": []})
        assert list(spool.iterdir()) == []
    finally:
        server.stop()
