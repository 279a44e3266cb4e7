"""The whole appliance as `make run` starts it (entrypoint.sh -> supervisord -> postgres, embedder, app) with the
shipped CPU config, serving a PHP app <= 5.3 (push) and a PHP app 5.4 (pull) on the same run.

The pull flow knows only the wire contract (pull-contract.md): queue items in the fake Nextcloud, tasks scheduled
there, results read back; the appliance is reached over HTTP only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from contract_kit import APP_ID, APP_SECRET, ServerProcess, free_port, signed_headers
from nextcloud_pull_fake import FakePullNextcloud
from php_app_flow import run_php_app_flow
from pull_kit import BUDGET, HIKING, LABEL, chat, sources
from waiting import wait_for

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
# the shipped config's pull section is left as it is except for shorter idle waits (a test waits on them)
FAST_IDLE = "pull:\n  idle_poll_s: 0.2\n  idle_poll_max_s: 1\n  task_poll_s: 0.5\n  task_poll_after_trigger_s: 2\n"


@pytest.fixture
def nextcloud() -> Iterator[FakePullNextcloud]:
    with FakePullNextcloud(secret=APP_SECRET) as server:
        yield server


@pytest.fixture
def appliance(tmp_path: Path, nextcloud: FakePullNextcloud) -> Iterator[tuple[str, dict[str, str], ServerProcess]]:
    storage = tmp_path / "storage"
    storage.mkdir()
    embedder_port = free_port()
    config = (REPO / "configs" / "config.cpu.yaml").read_text()
    config = config.replace("http://127.0.0.1:5000/v1", f"http://127.0.0.1:{embedder_port}/v1")
    config = config.replace("  port: 5000\n", f"  port: {embedder_port}\n")
    (storage / "config.yaml").write_text(config + FAST_IDLE)
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("NEXTCLOUD_", "EXTERNAL_DB"))}
    env.update(APP_ID=APP_ID, APP_SECRET=APP_SECRET, APP_VERSION="5.4.0", APP_PORT=str(port))
    env.update(APP_PERSISTENT_STORAGE=str(storage), NEXTCLOUD_URL=nextcloud.url)
    server = ServerProcess([str(REPO / "entrypoint.sh")], tmp_path / "entrypoint.log", env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    server.start(lambda: httpx.get(f"{base}/heartbeat", timeout=2).status_code == 200, timeout_s=180)
    yield base, env, server
    server.stop(timeout_s=60)


def test_push_and_pull_against_the_whole_appliance(
    appliance: tuple[str, dict[str, str], ServerProcess], nextcloud: FakePullNextcloud
) -> None:
    base, env, server = appliance
    # a PHP app <= 5.3 first: every push assertion of the contract flow, on the same running appliance
    run_php_app_flow(base, APP_SECRET)
    wait_for(lambda: len(nextcloud.providers) == 2, 30, "the TaskProcessing providers registered on enable")

    # PHP app 5.4: files for several users with a share, a provider item, poisoned items, HTTP faults
    budget = nextcloud.add_file(["alice"], "files/Documents/budget.txt", BUDGET)
    label = nextcloud.add_file(["alice", "bob"], "files/Shared/label.txt", LABEL)
    hiking = nextcloud.add_file(["bob"], "files/holiday.md", HIKING, mimetype="text/markdown")
    nextcloud.file_faults[budget] = deque([500, 400])
    mail = nextcloud.add_content_item(["alice"], content="Re: budget. The Berlin budget review is on Friday.")
    poisoned = nextcloud.add_raw_file_item({"userIds": [], "reference": "files__default: 1", "title": "x"})
    gone = nextcloud.add_file(["alice"], "files/gone.txt", b"deleted before it was fetched")
    nextcloud.remove_file(gone)
    rows = {nextcloud.file_row_id(f) for f in (budget, label, hiking)} | {poisoned}
    wait_for(lambda: rows <= set(nextcloud.acked_documents()["files"]), 120, "the documents acknowledged")
    wait_for(lambda: mail in nextcloud.acked_documents()["content_providers"], 60, "the provider item acknowledged")
    assert nextcloud.file_fetches[budget] == 3 and nextcloud.queue_rows()["files"] == []

    def ask(task_type: str, user: str, task_input: dict[str, Any]) -> dict[str, Any]:
        task_id = nextcloud.schedule_task(task_type, user, task_input)
        httpx.post(f"{base}/trigger", params={"providerId": "context_chat-context_chat"}, headers=signed_headers())
        task: dict[str, Any] = nextcloud.wait_task(task_id, 120)
        return task

    wait_for(lambda: _status(base)["chunks"]["queued"] == 0, 120, "every chunk embedded")
    alice = sources(ask("context_chat:context_chat", "alice", chat("What is the travel budget of the Berlin office?")))
    assert f"files__default: {budget}" in {s["id"] for s in alice}
    bob_search = ask("context_chat:context_chat_search", "bob", {**chat("budget Berlin green label"), "limit": 2})
    bob = {s["id"] for s in sources(bob_search)}
    assert 1 <= len(bob) <= 2 and bob <= {f"files__default: {label}", f"files__default: {hiking}"}

    # access and delete actions, visible in the next answer
    deny = {"op": "deny", "userIds": ["bob"], "sourceId": f"files__default: {label}"}
    actions = {
        nextcloud.add_action("update_access_source_id", deny),
        nextcloud.add_action("delete_source_ids", {"sourceIds": [f"files__default: {budget}"]}),
        nextcloud.add_action("delete_provider_id", {"providerId": "nope"}),  # a bare id that matches nothing
    }
    wait_for(lambda: actions <= set(nextcloud.acked_documents()["actions"]), 60, "the actions acknowledged")
    # acknowledged means stored: they are applied after it
    wait_for(lambda: _actions_done(base) >= 3, 60, "the actions applied")
    again = ask("context_chat:context_chat", "alice", chat("What is the travel budget of the Berlin office?"))
    assert f"files__default: {budget}" not in {s["id"] for s in sources(again)}
    bob_again = ask("context_chat:context_chat_search", "bob", {**chat("green label ethical rating"), "limit": 5})
    assert f"files__default: {label}" not in {s["id"] for s in sources(bob_again)}

    # a restart of the app in the middle of a batch: nothing lost, nothing twice
    clock = [time.time()]
    nextcloud.now = lambda: clock[0]
    nextcloud.chunk_size = 512
    slow = nextcloud.add_file(["alice"], "files/slow.txt", LABEL * 300)
    nextcloud.slow_files[slow] = 0.05
    wait_for(lambda: nextcloud.file_fetches[slow] == 1, 60, "the slow download to start")
    ctl = [sys.executable, "-m", "appliance", "ctl", "restart", "app"]
    assert "app: started" in subprocess.run(ctl, env=env, cwd=REPO, capture_output=True, text=True, timeout=120).stdout
    assert nextcloud.file_row_id(slow) not in nextcloud.acked_documents()["files"]
    nextcloud.slow_files.clear()
    clock[0] += 24 * 3600 + 1  # the PHP app's lock expires and the row is served again
    wait_for(lambda: nextcloud.file_row_id(slow) is None, 120, "the slow file indexed after the restart")
    counts = httpx.post(f"{base}/countIndexedDocuments", headers=signed_headers()).json()
    assert counts == {"files__default": 4, "mail__mail": 1}  # label, hiking, slow and the push flow's last file
    status = _status(base)
    assert status["loops"]["documents"]["state"] in {"idle", "running"}
    assert status["pull"] == {
        "nextcloud_configured": True,
        "php_app_queues": True,
        "detail": "PHP app serves its queues",
        "task_providers_registered": True,
        "files_to_retry": {"files": 0, "next_try_at": None},
    }
    server.stop(timeout_s=60)
    assert server.process is not None and server.process.returncode == 0, server.log_text()[-3000:]
    for path in (Path(env["APP_PERSISTENT_STORAGE"]) / "logs").rglob("*.log"):
        text = path.read_text(errors="replace")
        assert APP_SECRET not in text and "12000 euros" not in text, path


def _actions_done(base: str) -> int:
    counters: dict[str, int] = _status(base)["loops"]["actions"]["counters"]
    return counters.get("applied", 0) + counters.get("invalid", 0)


def _status(base: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/status", headers=signed_headers(), timeout=30)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body
