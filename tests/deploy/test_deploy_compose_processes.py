"""deploy/compose.yaml's topology as processes (same commands and environment as its containers: entrypoint.sh for
every role replica, the embedder program for the embedding service) against one PostgreSQL, serving a PHP app 5.4
in pull mode: queued files of several users get indexed once each, a chat and a search task are answered, an access
change is applied.

Each replica must report the role its service names: that needs the roles wired into the app (issue 11 part 1);
everything after it holds with or without them (without, every replica runs everything, as `normal`). Until the
enabled state is shared through the database (part 2), AppAPI's PUT /enabled reaches only requestproc, so the test
enables each replica itself after it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from compose_file import ComposeService, load_services
from compose_processes import ComposeProcesses
from contract_kit import APP_SECRET, signed_headers
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import BUDGET, HIKING, LABEL, chat, sources
from waiting import wait_for

pytestmark = pytest.mark.slow
# one question whose answer is in alice's budget file, one search over bob's files
BUDGET_QUESTION = "What is the travel budget of the Berlin office?"


@pytest.fixture
def nextcloud() -> Iterator[FakePullNextcloud]:
    with FakePullNextcloud(secret=APP_SECRET) as server:
        yield server


@pytest.fixture
def services(nextcloud: FakePullNextcloud) -> dict[str, ComposeService]:
    """The file read with deploy/.env's variables: our AppAPI secret and the fake Nextcloud."""
    services: dict[str, ComposeService] = load_services(
        {"APP_SECRET": APP_SECRET, "NEXTCLOUD_URL": nextcloud.url, "POSTGRES_PASSWORD": "unused"}
    )
    return services


@pytest.fixture
def topology(fresh_dsn: str, services: dict[str, ComposeService]) -> Iterator[ComposeProcesses]:
    # a short root: a role's supervisord socket (<storage>/run/<role>/supervisor.sock) must fit AF_UNIX's 107 bytes
    root = Path(tempfile.mkdtemp(prefix="ccb-compose-", dir="/tmp"))
    processes = ComposeProcesses(services, root, fresh_dsn)
    try:
        processes.start()
        yield processes
    finally:
        processes.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_compose_topology_indexes_and_answers_in_pull_mode(
    topology: ComposeProcesses, nextcloud: FakePullNextcloud, fresh_dsn: str
) -> None:
    counts = {name: len(replicas) for name, replicas in topology.replicas.items()}
    assert counts == {"embedder": 1, "requestproc": 1, "updatesproc": 1, "indexing": 2, "embedding-worker": 2}
    (requestproc,) = topology.replicas["requestproc"]
    # each replica runs the role its service names (GET /status reports it once the roles are wired in)
    for replica in topology.app_replicas():
        assert _status(replica.url)["role"]["name"] == replica.service.environment["APP_ROLE"], replica.name
    for replica in [requestproc, *(r for r in topology.app_replicas() if r is not requestproc)]:
        response = httpx.put(f"{replica.url}/enabled?enabled=1", headers=signed_headers(), timeout=60)
        assert response.status_code == 200, (replica.name, response.text)
    wait_for(lambda: len(nextcloud.providers) == 2, 60, "the TaskProcessing providers registered")

    budget = nextcloud.add_file(["alice"], "files/Documents/budget.txt", BUDGET)
    label = nextcloud.add_file(["alice", "bob"], "files/Shared/label.txt", LABEL)
    hiking = nextcloud.add_file(["bob"], "files/holiday.md", HIKING, mimetype="text/markdown")
    mail = nextcloud.add_content_item(["alice"], content="Re: budget. The Berlin budget review is on Friday.")
    rows = {nextcloud.file_row_id(f) for f in (budget, label, hiking)}
    wait_for(lambda: rows <= set(nextcloud.acked_documents()["files"]), 180, "the files acknowledged")
    wait_for(lambda: mail in nextcloud.acked_documents()["content_providers"], 60, "the provider item acknowledged")
    wait_for(lambda: _queued_chunks(requestproc.url) == 0, 180, "every chunk embedded")
    # two indexing replicas, yet each file fetched and stored once
    assert [nextcloud.file_fetches[f] for f in (budget, label, hiking)] == [1, 1, 1]
    with psycopg.connect(fresh_dsn) as conn:
        stored: dict[str, int] = dict(
            conn.execute("SELECT provider, count(*) FROM documents GROUP BY provider").fetchall()
        )
        unembedded = conn.execute("SELECT count(*) FROM chunks WHERE embedding IS NULL").fetchone()
    assert stored == {"files__default": 3, "mail__mail": 1} and unembedded == (0,)

    def ask(task_type: str, user: str, task_input: dict[str, Any]) -> dict[str, Any]:
        task_id = nextcloud.schedule_task(task_type, user, task_input)
        trigger = httpx.post(
            f"{requestproc.url}/trigger", params={"providerId": "context_chat-context_chat"}, headers=signed_headers()
        )
        assert trigger.status_code == 200, trigger.text
        task: dict[str, Any] = nextcloud.wait_task(task_id, 120)
        return task

    alice = sources(ask("context_chat:context_chat", "alice", chat(BUDGET_QUESTION)))
    assert f"files__default: {budget}" in {s["id"] for s in alice}
    bob = {
        s["id"] for s in sources(ask("context_chat:context_chat_search", "bob", {**chat("green label"), "limit": 2}))
    }
    assert f"files__default: {label}" in bob and f"files__default: {budget}" not in bob

    deny = nextcloud.add_action(
        "update_access_source_id", {"op": "deny", "userIds": ["bob"], "sourceId": f"files__default: {label}"}
    )
    wait_for(lambda: deny in nextcloud.acked_documents()["actions"], 60, "the access change acknowledged")
    # acknowledged means stored: it is applied after it
    wait_for(lambda: _actions_waiting(fresh_dsn) == 0, 60, "the access change applied")
    bob_again = ask("context_chat:context_chat_search", "bob", {**chat("green label ethical rating"), "limit": 5})
    assert f"files__default: {label}" not in {s["id"] for s in sources(bob_again)}

    codes = topology.stop()
    assert codes == {name: 0 for name in codes}, "every replica stops cleanly on SIGTERM"
    for log in topology.root.rglob("*.log"):
        text = log.read_text(errors="replace")
        assert APP_SECRET not in text and "12000 euros" not in text, log


def _status(base: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/status", headers=signed_headers(), timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _actions_waiting(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pull_actions WHERE done_at IS NULL").fetchone()
    assert row is not None
    waiting: int = row[0]
    return waiting


def _queued_chunks(base: str) -> int:
    queued: int = _status(base)["chunks"]["queued"]
    return queued
