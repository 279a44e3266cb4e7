"""Ports for the real servers the tests start (shared by every test folder: tests/ is on sys.path via conftest)."""

from __future__ import annotations

import asyncio
import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def connect_when_listening(port: int, within_s: float = 10.0) -> socket.socket:
    """A connection to 127.0.0.1:`port` once a server just started there listens (tried every 50 ms)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)
