"""Timeouts against stalled clients, over real sockets against the server as supervisord starts it
(http.body_timeout_s and http.keep_alive_s shrunk to seconds): a stalled body is answered 408 and frees its ingest
slot, unfinished headers are closed, a slow upload that keeps sending is not cut, and a request the server works on
longer than the body timeout is answered."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from contract_kit import SourcePart, guzzle_multipart, signed_headers
from live_app_kit import start_live_app
from server_process import ServerProcess

pytestmark = pytest.mark.slow
BODY_TIMEOUT_S = 2
KEEP_ALIVE_S = 2
TEXT = b"A slow link uploads this file about the garden shed, piece by piece, while the server waits for it."


@pytest.fixture
def one_ingest_slot(tmp_path: Path, fresh_dsn: str, embedder_url: str) -> Iterator[tuple[str, ServerProcess]]:
    """The real server with a single /loadSources slot, so a client holding it blocks every other upload."""
    base, server = start_live_app(
        tmp_path,
        fresh_dsn,
        embedder_url,
        ingest={"parse_workers": 1, "concurrent_requests": 1},
        http={"body_timeout_s": BODY_TIMEOUT_S, "keep_alive_s": KEEP_ALIVE_S},
    )
    yield base, server
    server.stop()


def _upload(source_id: str) -> tuple[bytes, bytes]:
    """(request head, body) of a one-file PUT /loadSources as the PHP app sends it."""
    body, content_type = guzzle_multipart([SourcePart(source_id, TEXT)])
    headers = {**signed_headers(), "Content-Type": content_type, "Content-Length": str(len(body))}
    head = "PUT /loadSources HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    return head.encode(), body


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=60)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket timeout: 60 s)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _normal_upload(base: str, source_id: str, results: dict[str, httpx.Response]) -> threading.Thread:
    def send() -> None:
        body, content_type = guzzle_multipart([SourcePart(source_id, TEXT)])
        headers = {**signed_headers(), "Content-Type": content_type}
        results[source_id] = httpx.put(f"{base}/loadSources", content=body, headers=headers, timeout=120)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_a_stalled_client_is_disconnected_and_frees_its_ingest_slot(one_ingest_slot: tuple[str, ServerProcess]) -> None:
    base, _server = one_ingest_slot
    head, body = _upload("files__default: 1")
    with _connect(base) as stalled:
        stalled.sendall(head + body[:64])  # then nothing: a dead link, or a client holding the slot on purpose
        time.sleep(0.5)  # let the server take it in first (the assertions hold in either order)
        results: dict[str, httpx.Response] = {}
        waiting = _normal_upload(base, "files__default: 2", results)
        # the server ends the stalled exchange after the body timeout instead of holding it forever
        answer = _read_until_closed(stalled)
        assert _status(answer) == 408, answer[:500]
        assert b"the request body stopped arriving (nothing for 2 s, http.body_timeout_s)" in answer
    waiting.join(120)
    assert results["files__default: 2"].status_code == 200
    assert results["files__default: 2"].json() == {"loaded_sources": ["files__default: 2"], "sources_to_retry": []}
    with _connect(base) as slow_headers:
        slow_headers.sendall(b"PUT /loadSources HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the rest of the head never comes
        assert _read_until_closed(slow_headers) == b""


def test_a_slow_upload_that_keeps_sending_is_not_cut(one_ingest_slot: tuple[str, ServerProcess]) -> None:
    base, _server = one_ingest_slot
    head, body = _upload("files__default: 3")
    pieces = [body[i : i + 48] for i in range(0, len(body), 48)]
    pause_s = BODY_TIMEOUT_S / 4
    assert len(pieces) * pause_s > 2 * BODY_TIMEOUT_S  # the whole upload lasts longer than the body timeout
    results: dict[str, httpx.Response] = {}
    with _connect(base) as slow:
        slow.sendall(head)
        slow.sendall(pieces[0])
        time.sleep(0.5)
        # queued behind the slow upload for the slot: the server holds this request longer than the body timeout
        waiting = _normal_upload(base, "files__default: 4", results)
        for piece in pieces[1:]:
            time.sleep(pause_s)
            slow.sendall(piece)
        response = _read_until_closed(slow)
    assert _status(response) == 200, response[:500]
    assert b'"loaded_sources":["files__default: 3"]' in response
    waiting.join(120)
    assert results["files__default: 4"].status_code == 200
