"""The crash scenario: the PHP app indexes a corpus into the whole appliance while its programs are killed with
SIGKILL one after another; then everything acknowledged must be in the database, whole, embedded, once."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from appliance_kit import alive, wait_for
from appliance_stack import ApplianceStack, shipped_config
from contract_kit import signed_headers
from index_checks import documents_stored, index_problems, queue_left
from local_ports import free_port
from php_indexer import Document, IndexerTally, PhpIndexer, corpus

# what can be killed: a supervisord program, or one of the app's parser processes
KILLABLE = ("app", "embedder", "parse worker", "postgres")


@dataclass
class Kill:
    """One SIGKILL: what, when (documents stored by then), and how long until supervisord had it running again."""

    target: str
    pid: int
    stored: int
    # a parse worker: whether it was parsing when it was killed
    note: str = ""
    back_after_s: float | None = None
    waiter: threading.Thread | None = field(default=None, repr=False)

    def describe(self) -> str:
        when = f"kill -9 {self.target} (pid {self.pid}{', ' + self.note if self.note else ''})"
        if self.target == "parse worker":
            return f"{when} after {self.stored} documents stored: replaced by the pool; a file it held is parsed again"
        back = "NOT running again" if self.back_after_s is None else f"running again after {self.back_after_s:.1f} s"
        return f"{when} after {self.stored} documents stored: {back}"


@dataclass
class CrashRun:
    """Figures and outcome of one scenario run."""

    documents: list[Document]
    tally: IndexerTally = field(default_factory=IndexerTally)
    kills: list[Kill] = field(default_factory=list)
    chunks: int = 0
    ingest_s: float = 0.0
    drain_s: float = 0.0
    healthy_s: float = 0.0
    orphans: list[str] = field(default_factory=list)
    spool_left: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failed_rows: dict[str, str] = field(default_factory=dict)

    def not_restarted(self) -> list[str]:
        """Killed programs supervisord did not bring back."""
        return [kill.target for kill in self.kills if kill.target != "parse worker" and kill.back_after_s is None]

    def summary(self) -> str:
        lines = [
            f"documents sent {len(self.documents)}, acknowledged {len(self.tally.acknowledged)}, "
            f"dropped as failed {len(self.tally.dropped)}, refused {len(self.tally.refused)}",
            f"chunks stored and embedded {self.chunks}; requests {self.tally.requests}, "
            f"documents put back in the queue {self.tally.resent}",
            f"ingest {self.ingest_s:.1f} s, queue drained {self.drain_s:.1f} s later, "
            f"healthy {self.healthy_s:.1f} s later",
        ]
        lines.extend(kill.describe() for kill in self.kills)
        for kind, count in sorted(self.tally.answers.items()):
            sample = self.tally.samples.get(kind, "")
            lines.append(f"answer {kind}: {count}" + (f"  e.g. {sample[:160]!r}" if sample else ""))
        return "\n".join(lines)


def run_crash_scenario(
    root: Path, count: int, kills: tuple[str, ...], max_paragraphs: int = 5, senders: int = 2
) -> CrashRun:
    """Index `count` documents, killing `kills` in turn at even intervals of stored documents; check everything."""
    assert set(kills) <= set(KILLABLE), kills
    run = CrashRun(corpus(count, max_paragraphs))
    stack = ApplianceStack(root, shipped_config(free_port()))
    try:
        stack.wait_healthy()
        stack.enable()
        indexer = PhpIndexer(stack.base_url, run.documents, senders=senders)
        run.tally = indexer.tally
        started = time.monotonic()
        indexer.start()
        for number, target in enumerate(kills, start=1):
            # by committed rows, not answers: a kill then lands in the middle of a batch of 25
            threshold = number * count // (len(kills) + 1)
            _wait_stored(stack, threshold, f"the kill of the {target}")
            run.kills.append(_kill(stack, target, threshold, run))
        indexer.join(timeout=900)
        run.ingest_s = time.monotonic() - started
        for kill in run.kills:
            if kill.waiter is not None:
                kill.waiter.join(200)
        started = time.monotonic()
        try:
            wait_for(lambda: queue_left(stack.query) == 0, 600, "the embedding queue to drain", interval=1.0)
        except AssertionError as exc:
            left = stack.query(
                "SELECT embed_state, count(*), max(attempts), max(last_error) FROM chunks"
                " WHERE embed_state <> 'embedded' OR embedding IS NULL GROUP BY 1"
            )
            raise AssertionError(f"{exc}; left (state, chunks, most attempts, an error): {left}") from None
        run.drain_s = time.monotonic() - started
        started = time.monotonic()
        stack.wait_healthy()
        run.healthy_s = time.monotonic() - started
        _check(stack, run)
    finally:
        stack.stop()
    return run


def _wait_stored(stack: ApplianceStack, threshold: int, before: str) -> None:
    def stored() -> bool:
        return (documents_stored(stack.query) or 0) >= threshold

    wait_for(stored, 600, f"{threshold} documents stored before {before}")


def _kill(stack: ApplianceStack, target: str, stored: int, run: CrashRun) -> Kill:
    """Send the SIGKILL now; a thread waits for supervisord to restart the program, so ingest goes on meanwhile."""
    if target == "parse worker":
        pid, busy = _busy_parse_worker(stack)
        os.kill(pid, signal.SIGKILL)
        return Kill(target, pid, stored, "while parsing" if busy else "while idle")
    # the app's parse workers must not outlive it
    doomed = [psutil.Process(pid) for pid in stack.parse_worker_pids()] if target == "app" else []
    started = time.monotonic()
    kill = Kill(target, stack.kill9(target), stored)

    def wait_back() -> None:
        try:
            stack.wait_running(target, timeout=180, not_pid=kill.pid)
        except AssertionError:  # left as back_after_s = None: CrashRun.not_restarted() names it
            return
        kill.back_after_s = time.monotonic() - started
        try:
            wait_for(lambda: not alive(doomed), 30, "the killed app's parse workers to exit")
        except AssertionError:
            run.orphans.extend(alive(doomed))

    kill.waiter = threading.Thread(target=wait_back, name=f"wait-{target}", daemon=True)
    kill.waiter.start()
    return kill


def _busy_parse_worker(stack: ApplianceStack) -> tuple[int, bool]:
    """A parse worker on the CPU (parsing) if one shows up within 5 s, else the first one."""
    workers = [psutil.Process(pid) for pid in stack.parse_worker_pids()]
    assert workers, "the app has no parse worker to kill"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for worker in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                if worker.status() == psutil.STATUS_RUNNING:
                    return worker.pid, True
        time.sleep(0.001)
    return workers[0].pid, False


def _check(stack: ApplianceStack, run: CrashRun) -> None:
    run.problems = index_problems(stack.query, run.documents, run.tally.acknowledged)
    run.chunks = int(stack.query("SELECT count(*) FROM chunks")[0][0])
    run.failed_rows = dict(stack.query("SELECT source_id, error FROM documents WHERE state = 'failed'"))
    run.spool_left = sorted(path.name for path in stack.storage.spool_dir.iterdir())
    # the app answers from the restarted database: a word only one document has finds that document
    for document in run.documents[:: max(1, len(run.documents) // 5)]:
        if document.source_id not in run.tally.acknowledged:
            continue
        number = document.source_id.rsplit(" ", 1)[-1]
        user = document.users[0]
        response = httpx.post(
            f"{stack.base_url}/docSearch",
            json={"userId": user, "query": f"marker{number}", "ctxLimit": 5},
            headers=signed_headers(user),
            timeout=60,
        )
        if response.status_code != 200 or document.source_id not in {hit["source_id"] for hit in response.json()}:
            run.problems.append(f"/docSearch marker{number} as {user}: {response.status_code} {response.text[:300]}")
