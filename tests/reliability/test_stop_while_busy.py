"""A stop of the busy appliance ends the app and the embedder by their own means, inside supervisord's stopwaitsecs (no
SIGKILL). The whole appliance under supervisord: SIGTERM while an upload is in flight (its body half sent) and the
embedding worker is inside a batch (the embedder frozen with SIGSTOP); and SIGTERM with every core busy. The requests'
drain (hypercorn's 3 s), the loops' grace (3 s) and the closers used to follow one another, past the app's 4 s:
supervisord SIGKILLed it in 3 of 7 stops under load.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from appliance_kit import wait_for
from appliance_stack import ApplianceStack, shipped_config
from contract_kit import SourcePart, guzzle_multipart, signed_headers
from local_ports import free_port

pytestmark = pytest.mark.slow


def _document(source_id: str, paragraphs: int) -> SourcePart:
    text = "\n\n".join(
        f"Paragraph {n} of the quarterly travel budget, with its figures and owners." for n in range(paragraphs)
    )
    return SourcePart(source_id, text.encode(), user_ids=("user0",), title="Documents/budget.txt")


def _held_upload(stack: ApplianceStack) -> socket.socket:
    """A PUT /loadSources whose body stops two thirds of the way (3 MB of text: the app spools it a MiB at a time):
    the request stays in flight until the server gives up on it."""
    body, content_type = guzzle_multipart([_document("files__default: 2", 40_000)])
    headers = {**signed_headers(), "Content-Type": content_type, "Content-Length": str(len(body))}
    head = "PUT /loadSources HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    held = socket.create_connection(("127.0.0.1", stack.port), timeout=30)
    held.sendall(head.encode() + body[: len(body) * 2 // 3])
    return held


def _log_messages(path: Path) -> list[str]:
    messages = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            messages.append(str(json.loads(line).get("msg", "")))
        except ValueError:
            messages.append(line)
    return messages


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def stack(stack_root: Path) -> Iterator[ApplianceStack]:
    running = ApplianceStack(stack_root, shipped_config(free_port()))
    try:
        running.wait_healthy()
        running.enable()
        yield running
    finally:
        running.stop()


def test_a_stop_while_a_request_and_a_loop_are_busy_ends_the_app_without_sigkill(stack: ApplianceStack) -> None:
    # healthy says the app answers; the embedder may still be inside its startsecs (STARTING, though listening)
    embedder = stack.wait_running("embedder")
    os.kill(embedder, signal.SIGSTOP)
    try:
        body, content_type = guzzle_multipart([_document("files__default: 1", 40)])
        headers = {**signed_headers(), "Content-Type": content_type}
        response = httpx.put(f"{stack.base_url}/loadSources", content=body, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        # the worker has claimed a batch and waits inside its call to the frozen embedder
        leased = "SELECT count(*) FROM chunks WHERE lease_until > now()"
        wait_for(lambda: stack.query(leased)[0][0] > 0, 60, "the embedding worker to claim a batch")
        held = _held_upload(stack)
        wait_for(lambda: any(stack.storage.spool_dir.iterdir()), 30, "the held upload to be spooled")
        app = stack.pid("app")
        stack.process.send_signal(signal.SIGTERM)
        wait_for(lambda: _gone(app), 30, "the app to end")
    finally:
        os.kill(embedder, signal.SIGCONT)
    assert stack.process.wait(60) == 0
    held.close()
    supervisord = _log_messages(stack.storage.log_dir / "supervisord.log")
    assert [m for m in supervisord if "SIGKILL" in m and "app" in m] == []
    assert any(m.startswith("stopped: app (exit status 0)") for m in supervisord), supervisord[-10:]


def _burn(stop: Any) -> None:
    while not stop.is_set():
        pass


def test_a_stop_with_every_core_busy_ends_every_program_without_sigkill(stack: ApplianceStack) -> None:
    # the embedder runs at niceness 10: beside busy cores its interpreter's finalization (the runtime's native
    # teardown) took seconds past its stopwaitsecs=3
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    burners = [context.Process(target=_burn, args=(stop,)) for _ in range(2 * (os.cpu_count() or 1))]
    for burner in burners:
        burner.start()
    try:
        stack.process.send_signal(signal.SIGTERM)
        assert stack.process.wait(60) == 0
    finally:
        stop.set()
        for burner in burners:
            burner.join(10)
    supervisord = _log_messages(stack.storage.log_dir / "supervisord.log")
    assert [m for m in supervisord if "SIGKILL" in m] == []
    for program in ("app", "embedder"):
        assert any(m.startswith(f"stopped: {program} (exit status 0)") for m in supervisord), supervisord[-10:]
