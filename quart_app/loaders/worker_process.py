"""One parse worker process as the app sees it: started with an explicit environment, spoken to over a socket.

Blocking calls; the parse pool makes them from its threads.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from multiprocessing.reduction import send_handle
from typing import Any

from .errors import ParsePoolError
from .worker_identity import worker_environment
from .worker_protocol import MAX_MESSAGE_BYTES, MalformedReplyError, WorkerSetup, decode

logger = logging.getLogger(__name__)

_WORKER_MODULE = "quart_app.loaders.parse_worker"


class WorkerProcess:
    """`WorkerProcess.start(setup, 0, 60)`, then `hand_over` a file and `receive` messages until a final one."""

    def __init__(self, slot: int, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.slot = slot
        self._process = process
        self._conn = conn

    @classmethod
    def start(cls, setup: WorkerSetup, slot: int, timeout_s: float) -> WorkerProcess:
        """A worker that has imported everything, dropped privileges and said it is ready; else ParsePoolError."""
        parent_sock, child_sock = socket.socketpair()
        try:
            # a fresh interpreter with an explicit environment: the app's secrets are not even in its initial
            # stack (multiprocessing's spawn would exec it with the app's whole environment)
            process = subprocess.Popen(
                [sys.executable, "-P", "-m", _WORKER_MODULE, str(child_sock.fileno())],
                env=worker_environment(),
                pass_fds=(child_sock.fileno(),),
                stdin=subprocess.DEVNULL,
                cwd="/",
            )
        except OSError:
            parent_sock.close()
            raise
        finally:
            child_sock.close()  # so a dead worker shows up as EOF on our end
        worker = cls(slot, process, Connection(parent_sock.detach()))
        try:
            worker._conn.send(setup)
            message = worker.receive(timeout_s)
        except (EOFError, OSError, MalformedReplyError):
            worker.kill()
            raise ParsePoolError(
                f"parse worker {slot} failed to start (exit code {process.returncode}); see the log above"
            ) from None
        if message is None or message[0] != "ready":
            worker.kill()
            if message is None:
                raise ParsePoolError(f"parse worker {slot} did not start within {timeout_s}s")
            raise ParsePoolError(f"parse worker {slot} failed to start: {message[1][0] if message[1] else message[0]}")
        logger.debug("parse worker %d started (pid %d)", slot, process.pid)
        return worker

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def hand_over(self, name: str, mimetype: str, fd: int) -> None:
        """Send one file: its name for messages, its mimetype, and the open descriptor itself."""
        self._conn.send((name, mimetype))
        send_handle(self._conn, fd, self._process.pid)

    def receive(self, timeout_s: float) -> tuple[str, list[Any]] | None:
        """The next message, or None after `timeout_s`.

        EOFError or ConnectionError: the worker is gone; OSError: it announced a message longer than allowed;
        MalformedReplyError: the message is not of the protocol.
        """
        if timeout_s <= 0 or not self._conn.poll(timeout_s):
            return None
        return decode(self._conn.recv_bytes(MAX_MESSAGE_BYTES))

    def exit_code(self) -> int | None:
        """The worker's exit code (negative: the signal), waiting up to 5 s for it to end."""
        try:
            return self._process.wait(5)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Ask the worker to finish, then make sure it has."""
        try:
            self._conn.send(None)
            self._process.wait(2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def abort(self) -> None:
        """SIGKILL without waiting: from the event loop, while a pool thread may still be reading from it."""
        if self._process.poll() is None:
            self._process.kill()

    def kill(self) -> None:
        """End the worker now and wait for it (idempotent)."""
        if self._process.poll() is None:
            self._process.kill()
        if self.exit_code() is None:
            logger.warning("parse worker %d (pid %d) did not exit after SIGKILL", self.slot, self._process.pid)
        self._conn.close()
