"""A real server as a subprocess for tests: start, poll until it answers, stop terminate -> wait -> kill."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class ServerProcess:
    """A real server as a subprocess: start, poll until `ready()` says so, stop terminate -> wait -> kill."""

    def __init__(self, command: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.command = command
        self.log_path = log_path
        self.env = env or dict(os.environ)
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready: Callable[[], bool], timeout_s: float = 120.0) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd
            )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command[:4]} exited early:\n{self.log_text()[-3000:]}")
            try:
                if ready():
                    return
            except Exception:  # not listening yet (httpx.TransportError, OSError)
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.command[:4]} not ready within {timeout_s} s:\n{self.log_text()[-3000:]}")
            time.sleep(0.2)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop_within(self, limit_s: float) -> str:
        """SIGTERM, as supervisord stops it; asserts it exits with 0 within `limit_s` seconds; returns its log."""
        assert self.process is not None, "start() first"
        asked = time.monotonic()
        try:
            self.process.terminate()
            code = self.process.wait(max(90.0, limit_s))
            took = time.monotonic() - asked
        finally:
            self.stop()
        log = self.log_text()
        assert took < limit_s, f"the stop took {took:.1f} s:\n{log[-3000:]}"
        assert code == 0, log[-3000:]
        return log

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
