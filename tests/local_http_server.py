"""A ThreadingHTTPServer on 127.0.0.1 served from a daemon thread: the lifetime every local HTTP fake shares."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


class LocalHttpServer:
    """Serves `handler` on a free loopback port while entered (over TLS with `tls`); its threads die with the test
    process."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None, *, poll_s: float = 0.5
    ) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "http" if tls is None else "https"
        # poll_s: how long shutdown() may wait for the serving loop to notice
        self._thread = threading.Thread(target=self._server.serve_forever, args=(poll_s,), daemon=True)

    @property
    def base_url(self) -> str:
        """http(s)://127.0.0.1:<port>, without a trailing slash."""
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    @property
    def port(self) -> int:
        """The loopback port it listens on."""
        return int(self._server.server_address[1])

    def __enter__(self) -> LocalHttpServer:
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class LocalHttpFake:
    """A fake served by its own LocalHttpServer (`_http`, made by the subclass): entered, it serves; left, it stops."""

    _http: LocalHttpServer

    def __enter__(self) -> Self:
        self._http.__enter__()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._http.__exit__(t, e, tb)
