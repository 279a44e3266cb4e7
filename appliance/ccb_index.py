"""`ccb index`: send local files as the PHP app does, then follow their chunks through the embedding queue."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from appliance.app_client import AppClient, AppRequestError, SourcePart
from appliance.ccb_status import embedder_line
from appliance.local_sources import LocalFile, batches, display_name, source_part

# the PHP app re-queues `sources_to_retry` and 503 + cc-retry; we retry a batch this often before giving up
SEND_ATTEMPTS = 3
RETRY_PAUSE_S = 2.0
STATUS_POLL_S = 0.5


@dataclass
class IndexReport:
    """What `ccb index` did: files indexed, skipped (no loader for the type), not indexed with the reason, folders
    not read (path, reason: their files were never seen), chunks through the queue."""

    indexed: list[LocalFile] = field(default_factory=list)
    skipped: list[LocalFile] = field(default_factory=list)
    failed: list[tuple[LocalFile, str]] = field(default_factory=list)
    unread_folders: list[tuple[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_failed: int = 0
    chunks_queued: int = 0
    # the wait for embedding (`wait_s`) passed with chunks still queued
    timed_out: bool = False
    # why the queued chunks wait when the app finds the embedding service unavailable ("" otherwise)
    embedder_error: str = ""
    seconds: float = 0.0

    def waiting_reason(self) -> str:
        """Why chunks are still queued at the end of the wait ("" when none is, or the run did not wait)."""
        if self.embedder_error:
            return (
                f"the queued chunks wait for the embedding service, which the app finds unavailable:"
                f" {self.embedder_error}; they are embedded once it is back (`ccb status` follows it)"
            )
        if self.timed_out:
            return (
                f"the wait for embedding ended with {self.chunks_queued} chunks still queued: embedding is slower than"
                " --timeout; they are embedded meanwhile (`ccb status --watch` follows it)"
            )
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "indexed": [
                {"path": display_name(f.path), "source_id": f.source_id, "title": f.title} for f in self.indexed
            ],
            "skipped": [{"path": display_name(f.path), "reason": f.skipped} for f in self.skipped],
            "failed": [
                {"path": display_name(f.path), "source_id": f.source_id, "reason": why} for f, why in self.failed
            ],
            "unread_folders": [{"path": path, "reason": why} for path, why in self.unread_folders],
            "chunks": {"embedded": self.chunks_embedded, "failed": self.chunks_failed, "queued": self.chunks_queued},
            "timed_out": self.timed_out,
            "waiting_reason": self.waiting_reason(),
            "seconds": round(self.seconds, 2),
        }


class _Rate(ProgressColumn):
    """Items per second since the task started (rich's own speed column only shows byte sizes)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:6.1f} {task.fields.get('unit', '')}/s")


class _ChunkCounter:
    """Chunks embedded (or failed) since the start, from GET /status's whole-queue counters."""

    def __init__(self, app: AppClient) -> None:
        self._app = app
        chunks = app.status()["chunks"]
        self._base = int(chunks["embedded"]) + int(chunks["failed"])
        self._base_embedded, self._base_failed = int(chunks["embedded"]), int(chunks["failed"])
        self.last: dict[str, Any] = {}

    def poll(self) -> tuple[int, int]:
        """(chunks done since the start, chunks still queued)."""
        self.last = self._app.status()
        chunks = self.last["chunks"]
        done = int(chunks["embedded"]) + int(chunks["failed"]) - self._base
        return done, int(chunks["queued"])

    def finish(self, report: IndexReport) -> None:
        chunks = self.last["chunks"] if self.last else self._app.status()["chunks"]
        report.chunks_embedded = int(chunks["embedded"]) - self._base_embedded
        report.chunks_failed = int(chunks["failed"]) - self._base_failed
        report.chunks_queued = int(chunks["queued"])
        report.embedder_error = unavailable_embedder(self.last) if report.chunks_queued else ""


def unavailable_embedder(status: dict[str, Any]) -> str:
    """The app's last error from the embedding service while it finds it unavailable, else ""."""
    embedder = status.get("embedder") or {}
    return str(embedder.get("last_error") or "unavailable") if embedder.get("state") == "unavailable" else ""


def _read_parts(batch: Sequence[LocalFile], users: Sequence[str]) -> tuple[list[SourcePart], dict[str, str]]:
    """The batch's parts, and why each file that cannot be read any more is left out (gone or made unreadable since
    the walk: a long upload gives a folder time to change)."""
    parts: list[SourcePart] = []
    unreadable: dict[str, str] = {}
    for file in batch:
        try:
            parts.append(source_part(file, users))
        except OSError as exc:
            unreadable[file.source_id] = f"cannot read it: {exc.strerror or exc}"
    return parts, unreadable


def _send(app: AppClient, parts: Sequence[SourcePart]) -> tuple[set[str], str]:
    """(source ids loaded, why the rest were not); retries as the PHP app does."""
    pending = list(parts)
    loaded: set[str] = set()
    why = ""
    for attempt in range(SEND_ATTEMPTS):
        try:
            answer = app.load_sources(pending)
        except AppRequestError as exc:
            why = exc.message
            if exc.status < 500:
                return loaded, why
        else:
            loaded |= set(answer["loaded_sources"])
            retry = set(answer["sources_to_retry"])
            pending = [part for part in pending if part.source_id in retry]
            why = "the app asked to retry it and gave up"
            if not pending:
                break
        if attempt + 1 < SEND_ATTEMPTS:
            time.sleep(RETRY_PAUSE_S)
    return loaded, why


def _failure_reasons(status: dict[str, Any]) -> dict[str, str]:
    return {row["source_id"]: row["error"] for row in status.get("documents", {}).get("failed_sources", [])}


def run_index(
    app: AppClient, files: Sequence[LocalFile], users: Sequence[str], console: Console, *, wait_s: float | None
) -> IndexReport:
    """Upload in batches, then (unless `wait_s` is 0) follow the embedding queue until it is empty or `wait_s`
    (None = no limit) passed; `console` shows the progress bars (quiet for --json)."""
    started = time.monotonic()
    report = IndexReport(
        skipped=[file for file in files if file.skipped], failed=[(file, file.error) for file in files if file.error]
    )
    sendable = [file for file in files if not file.skipped and not file.error]
    counter = _ChunkCounter(app)
    columns = (TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(), _Rate(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        upload = progress.add_task("upload", total=len(sendable), unit="files")
        embed = progress.add_task("embedding", total=None, unit="chunks")
        dropped: dict[str, tuple[LocalFile, str]] = {}
        for batch in batches(sendable):
            parts, unreadable = _read_parts(batch, users)
            loaded, why = _send(app, parts) if parts else (set(), "")
            for file in batch:
                if file.source_id in unreadable:
                    report.failed.append((file, unreadable[file.source_id]))
                elif file.source_id in loaded:
                    report.indexed.append(file)
                else:
                    dropped[file.source_id] = (file, why)
            progress.advance(upload, len(batch))
            _show_chunks(progress, embed, counter)
        if wait_s != 0:
            deadline = None if wait_s is None else time.monotonic() + wait_s
            told = False
            while _show_chunks(progress, embed, counter) > 0 and (deadline is None or time.monotonic() < deadline):
                # a bar standing at 0 for the whole wait says nothing: name the outage once, as `ccb status` does
                if not told and unavailable_embedder(counter.last):
                    progress.console.print(
                        Text("embedding service ", style="bold red") + embedder_line(counter.last["embedder"])
                    )
                    told = True
                time.sleep(STATUS_POLL_S)
    reasons = _failure_reasons(counter.last or app.status())
    for source_id, (file, why) in dropped.items():
        report.failed.append((file, reasons.get(source_id) or why or "not indexed (see `ccb status`)"))
    counter.finish(report)
    report.timed_out = wait_s != 0 and report.chunks_queued > 0
    report.seconds = time.monotonic() - started
    return report


def _show_chunks(progress: Progress, task: TaskID, counter: _ChunkCounter) -> int:
    """Update the embedding bar; the chunks still queued."""
    done, queued = counter.poll()
    progress.update(task, completed=done, total=done + queued)
    return queued
