"""Crash suite, fast subset: kill -9 of the app and of the embedder while the PHP app indexes 60 documents into the
whole appliance under supervisord. The 500-document run with all four kills is tests/soak/test_crash_soak.py.

Each test on a shared stack raises ScenarioError (a real failure) when the crash did not happen as planned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from appliance_kit import wait_for
from appliance_stack import ApplianceStack, shipped_config
from contract_kit import SourcePart, guzzle_multipart, signed_headers
from crash_scenario import run_crash_scenario
from local_ports import free_port
from php_indexer import Document, PhpIndexer, corpus

pytestmark = pytest.mark.slow
# short retries, so an outage would use up a chunk's attempts in seconds if it counted (the shipped 6 take ~62 s)
EMBEDDING_ATTEMPTS = 3
UNREACHABLE = "cannot reach the embedding service"
# the parse pool's warning when a worker died under a file (as before the fix, so it proves the kill hit the parse)
WORKER_KILLED = "died (exit code -9) on"


class ScenarioError(RuntimeError):
    """The crash did not happen as the test planned it (not the finding under test)."""


@contextlib.contextmanager
def scenario() -> Iterator[None]:
    """The steps that set the crash up: their assertions are ScenarioErrors, not the expected failure."""
    try:
        yield
    except AssertionError as exc:
        raise ScenarioError(str(exc)) from exc


def test_kill_9_of_app_and_embedder_during_ingest_loses_nothing(stack_root: Path) -> None:
    # short documents: the embedding queue, not the kills, would set this test's duration
    run = run_crash_scenario(stack_root, count=60, kills=("app", "embedder"), max_paragraphs=2)
    print(run.summary())
    assert run.problems == []
    assert run.tally.refused == {}
    assert run.tally.acknowledged == {document.source_id for document in run.documents}
    assert run.failed_rows == {}
    assert [kill.target for kill in run.kills] == ["app", "embedder"]
    assert run.not_restarted() == []
    assert run.orphans == []
    assert run.spool_left == []


@pytest.fixture(scope="module")
def stack() -> Iterator[ApplianceStack]:
    """One appliance for the tests below (each uses sources of its own)."""
    root = Path(tempfile.mkdtemp(prefix="ccb-rel-", dir="/tmp"))
    config = shipped_config(free_port())
    config["embedding_worker"].update(
        max_attempts=EMBEDDING_ATTEMPTS, backoff_base_s=0.5, backoff_max_s=1, outage_backoff_max_s=1
    )
    running = ApplianceStack(root, config)
    try:
        running.wait_healthy()
        running.enable()
        yield running
    finally:
        running.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_file_whose_parse_worker_is_killed_is_parsed_again(stack: ApplianceStack) -> None:
    # ~5 MB of HTML: a second or more of parsing, a window the kill cannot miss
    paragraph = "<p>" + " ".join(f"word{n}" for n in range(200)) + "</p>\n"
    html = ("<html><body>" + paragraph * 3500 + "</body></html>").encode()
    body, content_type = guzzle_multipart([SourcePart("files__default: 1", html, mimetype="text/html")])
    answers: list[httpx.Response] = []

    def send() -> None:
        headers = {**signed_headers(), "Content-Type": content_type}
        answers.append(httpx.put(f"{stack.base_url}/loadSources", content=body, headers=headers, timeout=300))

    log = stack.storage.log_dir / "app.log"
    with scenario():
        workers = [psutil.Process(pid) for pid in stack.parse_worker_pids()]
        idle_cpu = {worker.pid: sum(worker.cpu_times()[:2]) for worker in workers}
        deaths_before = log.read_text().count(WORKER_KILLED)
        sender = threading.Thread(target=send)
        sender.start()
        parsing: list[psutil.Process] = []

        def deep_in_the_parse() -> bool:
            parsing[:] = [w for w in workers if sum(w.cpu_times()[:2]) - idle_cpu[w.pid] > 0.3]
            return bool(parsing)

        wait_for(deep_in_the_parse, 120, "a parse worker to spend 0.3 s of CPU on the file", interval=0.05)
        os.kill(parsing[0].pid, signal.SIGKILL)
        sender.join(300)
        assert answers and answers[0].status_code == 200, answers[0].text if answers else "no answer"
        # logged through a queue, so the line may land just after the answer
        wait_for(lambda: log.read_text().count(WORKER_KILLED) == deaths_before + 1, 10, "the log of the worker's death")
    # old code: in neither list, the row failed with "the parse worker was killed (SIGKILL, most likely the
    # out-of-memory killer)" although nothing here ran short of memory, and the PHP app dropped the file
    assert answers[0].json() == {"loaded_sources": ["files__default: 1"], "sources_to_retry": []}
    rows = stack.query("SELECT state, error FROM documents WHERE source_id = %s", "files__default: 1")
    assert rows == [("indexed", None)]


def test_chunks_queued_while_the_embedder_is_down_are_embedded_once_it_is_back(stack: ApplianceStack) -> None:
    documents = [
        Document(f"files__default: 10{n}", template.text, template.users, template.mimetype)
        for n, template in enumerate(corpus(3, max_paragraphs=1, seed=10))
    ]
    ids = [document.source_id for document in documents]

    def embedder_status() -> dict[str, Any]:
        report = httpx.get(f"{stack.base_url}/status", headers=signed_headers(), timeout=30).json()
        return dict(report["embedder"])

    with scenario():
        stack.stop_program("embedder")
        indexer = PhpIndexer(stack.base_url, documents)
        indexer.start()
        indexer.join(timeout=120)
        assert indexer.tally.acknowledged == set(ids), indexer.tally
        # twice the calls that used up the chunks' attempts when an outage counted as one
        wait_for(
            lambda: embedder_status()["failed_calls"] >= 2 * EMBEDDING_ATTEMPTS,
            120,
            f"{2 * EMBEDDING_ATTEMPTS} failed calls to the stopped embedder",
        )
    outage = embedder_status()
    assert outage["state"] == "unavailable" and str(outage["last_error"]).startswith(UNREACHABLE), outage
    with scenario():
        stack.start_program("embedder")
        stack.wait_healthy()

    def chunk_states() -> dict[str, int]:
        rows = stack.query(
            "SELECT embed_state || coalesce(': ' || last_error, ''), count(*) FROM chunks WHERE source_id = ANY(%s)"
            " GROUP BY 1",
            ids,
        )
        return {str(state): int(count) for state, count in rows}

    with contextlib.suppress(AssertionError):
        wait_for(lambda: list(chunk_states()) == ["embedded"], 30, "the chunks to be embedded", interval=0.5)
    # before: {"failed: cannot reach the embedding service at http://...; is it running?": <all of them>}
    assert list(chunk_states()) == ["embedded"], chunk_states()
    assert embedder_status()["state"] == "available"
