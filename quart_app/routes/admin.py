"""Admin routes: POST /countIndexedDocuments, GET /downloadLogs, GET / and GET /status (ours)."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import stat
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from quart import Blueprint, Response, request

from appliance.app_role import ROLE_DUTIES
from appliance.machine_report import machine_report
from quart_app.auth import USER_SCOPE_KEY
from quart_app.engine import Engine, EngineNotReadyError, EngineStillOpeningError, engine
from quart_app.http_errors import RETRY_HEADERS, caller_never_requeues, json_message
from quart_app.lifecycle import Lifecycle, lifecycle, require_enabled
from quart_app.pull.file_retries import files_to_retry
from quart_app.services import deletion
from quart_app.services.status import DATABASE_PARTS, database_state
from quart_app.services.status import status as indexing_status
from quart_app.source_fields import FILES_PROVIDER
from quart_app.store import DatabaseUnavailableError

log = logging.getLogger(__name__)

blueprint = Blueprint("admin", __name__)

# zips up to this size stay in memory; larger ones roll over to an anonymous temp file (deleted on close)
ZIP_IN_MEMORY_BYTES = 8 * 1024 * 1024
STREAM_BYTES = 256 * 1024
# a file's last line still being written when its size was read is copied on to its end, up to this many bytes more
LINE_TAIL_BYTES = 64 * 1024
# the earliest time a zip entry can carry
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@blueprint.get("/")
async def hello() -> Response:
    user = request.scope.get(USER_SCOPE_KEY) or "anon"
    # upstream returns a bare string, which FastAPI serialises as a JSON string
    return Response(json.dumps(f"Hello, {user}!", ensure_ascii=False), mimetype="application/json")


@blueprint.post("/countIndexedDocuments")
@caller_never_requeues
@require_enabled
async def count_indexed_documents() -> Response:
    opened = engine()
    if opened.pull is not None:
        # both push (<= 5.3) and pull (5.4+) PHP apps call this; an admin checks it right after an upgrade
        opened.pull.gate.php_app_called()
    counts = await deletion.count_documents_by_provider(opened.db)
    # PHP 5.4+ rejects a non-empty answer without files__default as malformed (admin stats then look broken)
    return json_message({FILES_PROVIDER: counts.pop(FILES_PROVIDER, 0), **counts})


@blueprint.get("/status")
async def status() -> Response:
    state = lifecycle()
    try:
        opened = engine()
    except EngineNotReadyError as exc:
        # an opening that waits for PostgreSQL may wait for good: its 503 still says what runs and what it waits for
        report = {**_unread_parts(), "database": database_state(state.database.outage)}
        report.update(await _engine_free_parts(state, None, report.pop("files_to_retry")))
        # cc-retry as on the other routes' 503 for the same cause: only while the engine opens by itself
        retry = RETRY_HEADERS if isinstance(exc, EngineStillOpeningError) else None
        return json_message({"error": f"Error: {exc}", **report}, 503, retry)
    try:
        report = await _database_figures(opened)
        unreachable: DatabaseUnavailableError | None = None
    except DatabaseUnavailableError as exc:
        # an outage is when an admin needs the rest most (programs, embedder, loops): a 503 with all but these parts
        report, unreachable = _unread_parts(), exc
    # PostgreSQL as the request pool finds it: available, or since when and why not
    report["database"] = database_state(opened.db.outage, unreachable)
    report.update(await _engine_free_parts(state, opened, report.pop("files_to_retry")))
    if unreachable is None:
        return json_message(report)
    # the contract's error shape on top, so every client that reads only `error` still learns why
    return json_message({"error": f"Vector DB Error: {unreachable}", **report}, 503, RETRY_HEADERS)


def _unread_parts() -> dict[str, Any]:
    """The parts of GET /status read from PostgreSQL, null: the report could not read them."""
    return {**dict.fromkeys(DATABASE_PARTS), "cross_lingual": None, "files_to_retry": None}


async def _engine_free_parts(
    state: Lifecycle, opened: Engine | None, retries: dict[str, object] | None
) -> dict[str, Any]:
    """The parts of GET /status that need no database: the loops, the embedder, the programs, the LLM, the pull mode
    and the role; those the engine knows are null while it is not open. `retries`: the pull's files to retry."""
    pull = None if opened is None else opened.pull
    report: dict[str, Any] = {
        # what each background loop (engine opening, init job, embedding worker, pollers) is doing
        "loops": state.loops.snapshot(),
        # whether the embedding worker finds the embedding service available; while not, embedding waits (since, why)
        "embedder": None if opened is None else opened.worker.outage.as_json(),
        # sources being ingested, and access changes or deletes waiting for them to commit
        "ordering": None if opened is None else opened.order.snapshot(),
        # how long the event loop was blocked (every request waits meanwhile): worst since start, p99 of the last minute
        "event_loop": state.loop_lag.snapshot(),
    }
    # supervisord's programs and the hardware: the same figures `ccb status` and the status page show
    report.update(await asyncio.to_thread(machine_report, state.settings.storage))
    report["llm"] = None if opened is None or opened.answer is None else opened.answer.llm_report()
    report["pull"] = {
        "nextcloud_configured": state.nextcloud is not None,
        "php_app_queues": None if pull is None else pull.gate.available,
        "detail": _pull_detail(state, opened),
        "task_providers_registered": pull is not None and pull.tasks is not None and pull.tasks.registered,
        # queue files whose download failed all its tries, kept for a later try while their row stays locked for us
        "files_to_retry": retries,
    }
    # APP_ROLE and what it runs (appliance/app_role.py ROLE_DUTIES)
    report["role"] = {"name": state.settings.role, "duties": sorted(ROLE_DUTIES[state.settings.role])}
    return report


def _pull_detail(state: Lifecycle, opened: Engine | None) -> str:
    if state.nextcloud is None:
        return "NEXTCLOUD_URL is not set"
    # the pollers start with the engine
    return "not known until the engine has opened" if opened is None or opened.pull is None else opened.pull.gate.reason


async def _database_figures(opened: Engine) -> dict[str, Any]:
    """The parts of GET /status read from PostgreSQL; raises DatabaseUnavailableError while it cannot be reached."""
    report = await indexing_status(opened.db)
    # the multilingual third leg: its model, whether a question has needed it, and how many chunks have its vector
    report["cross_lingual"] = None if opened.cross_lingual is None else await opened.cross_lingual.progress()
    report["files_to_retry"] = await files_to_retry(opened.db)
    return report


def build_logs_zip(log_dir: Path) -> IO[bytes]:
    """Every regular file under log_dir in a zip, in memory or an anonymous temp file; nothing stays on disk.

    Symlinks are never followed (neither files nor directories, nor log_dir itself): a link in the logs directory to
    /etc/shadow or config.yaml must not be shipped. Walking by directory fds closes the race of a swapped path.
    """
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=ZIP_IN_MEMORY_BYTES)  # noqa: SIM115 - closed by the caller
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for folder, _dirs, files, dir_fd in os.fwalk(log_dir, follow_symlinks=False):
            for name in sorted(files):
                arcname = os.path.relpath(os.path.join(folder, name), log_dir)
                try:
                    _add_regular_file(archive, arcname, name, dir_fd)
                except OSError as exc:
                    reason = "a symbolic link (never followed)" if exc.errno == errno.ELOOP else exc.strerror
                    log.warning("downloadLogs: skipped %s: %s", arcname, reason)
    spool.seek(0)
    return spool


def _add_regular_file(archive: zipfile.ZipFile, arcname: str, name: str, dir_fd: int) -> None:
    """Copy one file into the archive; a symlink (ELOOP from O_NOFOLLOW), fifo or device is skipped."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as source:
        status = os.fstat(source.fileno())
        if not stat.S_ISREG(status.st_mode):
            log.warning("downloadLogs: skipped %s: not a regular file", arcname)
            return
        entry = zipfile.ZipInfo(arcname, date_time=max(time.localtime(status.st_mtime)[:6], ZIP_EPOCH))
        entry.compress_type = zipfile.ZIP_DEFLATED
        entry.external_attr = (status.st_mode & 0o777) << 16
        entry.file_size = status.st_size
        with archive.open(entry, "w") as target:
            copy_whole_lines(source, target, status.st_size)


def copy_whole_lines(source: IO[bytes], target: IO[bytes], size: int) -> None:
    """The first `size` bytes of `source` (its size when listed, so lines written later stay out), then on to the end of
    the line they cut: a JSON-lines log caught mid-write still ends on a whole line. A last line without a newline
    within LINE_TAIL_BYTES (a program that died mid-line) is copied as it stands."""
    remaining = size
    last = b"\n"
    while remaining > 0 and (block := source.read(min(STREAM_BYTES, remaining))):
        target.write(block)
        remaining -= len(block)
        last = block[-1:]
    if last != b"\n":
        tail = source.read(LINE_TAIL_BYTES)
        end = tail.find(b"\n")
        if end >= 0:
            target.write(tail[: end + 1])


async def _stream(spool: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while block := await asyncio.to_thread(spool.read, STREAM_BYTES):
            yield block
    finally:
        spool.close()


@blueprint.get("/downloadLogs")
async def download_logs() -> Response:
    spool = await asyncio.to_thread(build_logs_zip, lifecycle().settings.storage.log_dir)
    response = Response(_stream(spool), mimetype="application/zip")
    response.headers["Content-Disposition"] = 'attachment; filename="docker_logs.zip"'
    return response
