"""HTTP/1.1 requests written byte by byte, so a test can send what httpx refuses to: duplicated, overlong or
non-ASCII headers, control characters in the path, lying Content-Length, broken chunked framing."""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass, field

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class RawRequest:
    """One request as bytes; Host, Content-Length and Connection: close are added unless `framing` is False."""

    method: str
    target: bytes
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    framing: bool = True
    # shut the sending side down after the request: the server sees the end of the stream
    half_close: bool = False

    def encode(self) -> bytes:
        lines = [self.method.encode() + b" " + self.target + b" HTTP/1.1"]
        if self.framing:
            lines += [b"Host: 127.0.0.1", b"Connection: close", b"Content-Length: " + str(len(self.body)).encode()]
        lines += [name + b": " + value for name, value in self.headers]
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body


@dataclass(frozen=True)
class RawResponse:
    """status 0: the server closed the connection without answering; -1: no answer within the timeout."""

    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def outcome(self) -> str:
        if self.status == -1:
            return "hang"
        if self.status == 0:
            return "closed"
        return f"{self.status // 100}xx"


def send(port: int, request: RawRequest, timeout_s: float) -> RawResponse:
    """Send the request on a fresh connection and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        try:
            sock.sendall(request.encode())
            if request.half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (413) and stopped reading; its answer may still be readable
        except TimeoutError:
            return RawResponse(-1, b"", {})
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            body = response.read()
        except TimeoutError:
            return RawResponse(-1, b"", {})
        except (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionResetError):
            return RawResponse(0, b"", {})
        return RawResponse(response.status, body, {name.lower(): value for name, value in response.getheaders()})
