"""A bounded pool of parse worker processes with per-file timeout and memory cap, driven from asyncio.

Each worker is a separate process, so a parser that hangs, exhausts memory or crashes is killed and replaced
without touching the event loop or the other files. A worker parses *and chunks*: the document's text and the
tokenizer's working memory stay under the worker's memory cap, and the app receives only the chunks. Workers run
as the unprivileged parser user with a scrubbed environment (see `worker_identity`) and get each file as an open
descriptor, never a path. At most `workers` files parse at once; further calls wait for a free worker in FIFO order.

A worker that dies under a file without the pool having killed it (for the file's time or memory limit) and
without reporting an error was killed from outside (the host's out-of-memory killer, an administrator) or crashed:
the file is parsed again in another worker, up to `crash_retries` times, then fails as `ParserCrashedError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .errors import (
    CorruptDocumentError,
    ParseMemoryError,
    ParsePoolClosedError,
    ParsePoolError,
    ParserCrashedError,
    ParseTimeoutError,
)
from .limits import ParseLimits
from .worker_identity import PARSER_OS_USER, WorkerIdentity, parser_identity
from .worker_process import WorkerProcess
from .worker_protocol import (
    BATCH_CHARS,
    DocumentChunk,
    MalformedReplyError,
    WorkerSetup,
    checked_chunks,
    worker_error,
)

if TYPE_CHECKING:
    from quart_app.chunking.chunker_spec import ChunkerSpec

logger = logging.getLogger(__name__)

# ("ok", chunks), ("raise", exception) or ("crashed", how the worker died: the file may be parsed again)
Outcome = tuple[str, Any]


@dataclass
class _Worker:
    """One slot of the pool; `process` is None when the slot must be (re)started before use."""

    slot: int
    process: WorkerProcess | None = None
    jobs: int = 0


class ParsePool:
    """`async with ParsePool(2, ParseLimits(), chunker=spec) as pool: chunks = await pool.parse_and_chunk(path, mt)`."""

    def __init__(
        self,
        workers: int = 2,
        limits: ParseLimits | None = None,
        *,
        chunker: ChunkerSpec,
        os_user: str = PARSER_OS_USER,
        start_timeout_s: float = 60.0,
        max_jobs_per_worker: int = 200,
        crash_retries: int = 2,
        extra_loaders: Mapping[str, str] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"ParsePool workers must be >= 1, got {workers}")
        if max_jobs_per_worker < 1:
            raise ValueError(f"ParsePool max_jobs_per_worker must be >= 1, got {max_jobs_per_worker}")
        if crash_retries < 0:
            raise ValueError(f"ParsePool crash_retries must be >= 0, got {crash_retries}")
        self.workers = workers
        self.limits = limits or ParseLimits()
        self._chunker = chunker
        self._os_user = os_user
        self._start_timeout_s = start_timeout_s
        # a fresh process now and then returns the heap that big documents fragmented
        self._max_jobs = max_jobs_per_worker
        self._crash_retries = crash_retries
        # mimetype -> "module:function", imported inside each worker (plugins and fault-injection tests)
        self._extra_loaders = dict(extra_loaders or {})
        # chunks overlap by at most half, so more text than twice the document's is a worker gone wrong
        self._max_reply_chars = 2 * self.limits.max_text_chars + BATCH_CHARS
        self._setup: WorkerSetup | None = None
        self._identity: WorkerIdentity | None = None
        self._idle: asyncio.Queue[_Worker] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._slots: list[_Worker] = []
        self._opened = False
        self._closed = False

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Start all workers (in parallel) and wait until each has imported the loaders and dropped privileges."""
        if self._closed:
            raise ParsePoolClosedError("the parse pool is closed; create a new ParsePool instead of reopening it")
        if self._opened:
            return
        self._identity = parser_identity(self._os_user)
        self._setup = WorkerSetup(self.limits, self._chunker, self._identity, self._extra_loaders)
        self._executor = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="parse-pool")
        self._idle = asyncio.Queue()
        self._slots = [_Worker(slot) for slot in range(self.workers)]
        loop = asyncio.get_running_loop()
        try:
            await asyncio.gather(*(loop.run_in_executor(self._executor, self._start, w) for w in self._slots))
        except BaseException:
            for worker in self._slots:
                self._kill(worker)
            self._executor.shutdown(wait=False)
            raise
        for worker in self._slots:
            self._idle.put_nowait(worker)
        self._opened = True
        user = self._identity.name if self._identity is not None else f"uid {os.geteuid()}"
        logger.info(
            "parse pool started: %d workers as %s, limits %s, texts up to %d characters",
            self.workers,
            user,
            self.limits,
            self.limits.max_text_chars,
        )

    async def parse_and_chunk(self, path: Path, mimetype: str, name: str = "") -> list[DocumentChunk]:
        """The chunks of one file; raises a `LoaderError` for a problem with this file only.

        `name` is how errors and logs name the file (the ingest passes its document: a spool's temp file name means
        nothing to an admin); the file's own name when empty."""
        path = Path(path)
        name = name or path.name
        deaths: list[str] = []
        while True:
            kind, value = await self._attempt(path, name, mimetype)
            if kind == "ok":
                chunks: list[DocumentChunk] = value
                return chunks
            if kind == "raise":
                raise value
            deaths.append(value)
            if len(deaths) > self._crash_retries:
                raise ParserCrashedError.on_every_attempt(name, mimetype, deaths)
            logger.warning(
                "parse of %s (%s): its worker died (%s) without being told to; parsing it again (attempt %d of %d)",
                name,
                mimetype,
                value,
                len(deaths) + 1,
                self._crash_retries + 1,
            )

    async def _attempt(self, path: Path, name: str, mimetype: str) -> Outcome:
        if not self._opened or self._closed or self._idle is None or self._executor is None:
            raise ParsePoolClosedError(
                "the parse pool is " + ("closed" if self._closed else "not open; use 'async with' or await open()")
            )
        worker = await self._idle.get()
        if self._closed:
            self._idle.put_nowait(worker)
            raise ParsePoolClosedError("the parse pool was closed while this file waited for a worker")
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._executor, self._run, worker, path, name, mimetype)
        # the worker goes back to the queue when its job ends, even if our caller was cancelled meanwhile
        job.add_done_callback(lambda _job: self._job_done(worker))
        return await asyncio.shield(job)

    async def close(self, timeout_s: float = 1.0) -> None:
        """Stop accepting files, let running parses finish for up to `timeout_s`, then stop all workers. The engine
        closes the pool after the loops and requests that wait for its parses: a parse left then has nobody to
        answer, and the appliance's whole stop must fit Docker's 10 s."""
        if self._closed:
            return
        self._closed = True
        if not self._opened or self._idle is None or self._executor is None:
            return
        idle = self._idle
        returned = 0

        async def _collect() -> None:
            nonlocal returned
            while returned < self.workers:
                await idle.get()
                returned += 1

        try:
            try:
                await asyncio.wait_for(_collect(), timeout_s)
            except TimeoutError:
                logger.warning("parse pool close: parses still running after %.1fs, killing their workers", timeout_s)
                self._abort_workers()
                # the jobs see their worker die, skip the restart because we are closed and hand the slots back
                await _collect()
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(self._executor, self._stop, w) for w in self._slots))
        except asyncio.CancelledError:
            # cut off (the app's stop deadline): no worker may outlive the app, holding its output pipe for supervisord
            self._abort_workers()
            self._executor.shutdown(wait=False)
            raise
        self._executor.shutdown(wait=True)
        logger.info("parse pool closed")

    def _abort_workers(self) -> None:
        for worker in self._slots:
            if worker.process is not None:
                worker.process.abort()

    def _job_done(self, worker: _Worker) -> None:
        idle, executor = self._idle, self._executor
        if idle is None or executor is None:
            return
        if worker.jobs >= self._max_jobs and not self._closed:
            recycle = asyncio.get_running_loop().run_in_executor(executor, self._recycle, worker)
            recycle.add_done_callback(lambda _recycle: idle.put_nowait(worker))
        else:
            idle.put_nowait(worker)

    # --- the rest runs in the pool's threads -------------------------------------------------------------

    def _start(self, worker: _Worker) -> None:
        assert self._setup is not None
        worker.process = WorkerProcess.start(self._setup, worker.slot, self._start_timeout_s)
        worker.jobs = 0

    def _kill(self, worker: _Worker) -> None:
        process, worker.process = worker.process, None
        if process is not None:
            process.kill()

    def _stop(self, worker: _Worker) -> None:
        process, worker.process = worker.process, None
        if process is not None:
            process.stop()

    def _recycle(self, worker: _Worker) -> None:
        logger.debug("parse worker %d recycled after %d files", worker.slot, worker.jobs)
        self._stop(worker)
        self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        self._kill(worker)
        if not self._closed:
            try:
                self._start(worker)
            except (ParsePoolError, OSError) as exc:
                # the slot stays empty and is started again by the next file that gets it
                logger.warning("parse worker %d could not be replaced: %s", worker.slot, exc)

    def _run(self, worker: _Worker, path: Path, name: str, mimetype: str) -> Outcome:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            return "raise", exc
        try:
            return self._run_unguarded(worker, fd, name, mimetype)
        except Exception as exc:  # never lose the slot: a failed job must still hand the worker back
            logger.exception("parse pool slot %d failed unexpectedly", worker.slot)
            self._kill(worker)
            return "raise", ParsePoolError(f"parse worker {worker.slot} failed: {type(exc).__name__}: {exc}")
        finally:
            os.close(fd)

    def _run_unguarded(self, worker: _Worker, fd: int, name: str, mimetype: str) -> Outcome:
        if worker.process is None or not worker.process.alive:
            self._replace(worker)
            if self._closed:  # close() came while the worker started and did not see it: it must not parse now
                return "raise", ParsePoolClosedError(
                    f"the parse pool was closed while {name} ({mimetype}) waited for its worker to start; parse"
                    " it again later"
                )
            if worker.process is None:
                return "raise", ParsePoolError(f"no parse worker could be started for {name}; see the log")
        owner = os.fstat(fd).st_uid
        if self._identity is not None:
            # the worker reopens the descriptor through /proc/self/fd, which needs the file to be its own; the
            # spool directory stays root's, so no other file (and this one by no path) is within its reach
            os.fchown(fd, self._identity.uid, -1)
        try:
            return self._exchange(worker, fd, name, mimetype)
        finally:
            if self._identity is not None:
                os.fchown(fd, owner, -1)

    def _exchange(self, worker: _Worker, fd: int, name: str, mimetype: str) -> Outcome:
        process = worker.process
        assert process is not None
        try:
            process.hand_over(name, mimetype, fd)
        except OSError:
            return self._died(worker, name, mimetype)
        limit = self.limits.timeout_s
        deadline = time.monotonic() + limit
        chunks: list[DocumentChunk] = []
        chars = 0
        while True:
            try:
                message = process.receive(deadline - time.monotonic())
                if message is None:
                    return "raise", self._timed_out(worker, name, mimetype)
                kind, args = message
                if kind != "chunks":
                    worker.jobs += 1
                    return self._outcome(worker, name, mimetype, kind, args, chunks)
                batch = checked_chunks(args[0] if args else None, self._chunker.chunk_tokens)
                chars += sum(len(chunk.text) for chunk in batch)
                if chars > self._max_reply_chars:
                    raise MalformedReplyError(f"more than {self._max_reply_chars} characters of chunks")
                chunks.extend(batch)
            except (EOFError, ConnectionError):
                return self._died(worker, name, mimetype)
            except (OSError, MalformedReplyError) as exc:  # OSError: "bad message length", too long
                return "raise", self._misbehaved(worker, name, mimetype, str(exc))

    def _timed_out(self, worker: _Worker, name: str, mimetype: str) -> Exception:
        limit = self.limits.timeout_s
        logger.warning(
            "parse of %s (%s) timed out after %.0fs; replacing worker %d", name, mimetype, limit, worker.slot
        )
        self._replace(worker)
        return ParseTimeoutError(
            f"{name} ({mimetype}): parsing took longer than timeout_s={limit:g}s and was stopped; "
            "raise the parse timeout if such files are expected"
        )

    def _outcome(
        self, worker: _Worker, name: str, mimetype: str, kind: str, args: list[Any], chunks: list[DocumentChunk]
    ) -> Outcome:
        match kind, args:
            case "done", [int() as count] if count == len(chunks):
                return "ok", chunks
            case "error", [str() as error, str() as message]:
                return "raise", worker_error(error, message, name, mimetype)
            case "memory", _:
                logger.warning("parse of %s (%s) ran out of memory; replacing worker %d", name, mimetype, worker.slot)
                self._replace(worker)
                return "raise", ParseMemoryError(
                    f"{name} ({mimetype}): parsing needed more than memory_mb={self.limits.memory_mb} MB and "
                    "was stopped; raise ingest.parse_memory_mb or split the file"
                )
        raise MalformedReplyError(f"an unexpected {kind!r} message")

    def _misbehaved(self, worker: _Worker, name: str, mimetype: str, reason: str) -> Exception:
        logger.warning(
            "parse worker %d sent a malformed reply on %s (%s): %s; replacing it",
            worker.slot,
            name,
            mimetype,
            reason,
        )
        self._replace(worker)
        return CorruptDocumentError(
            f"{name} ({mimetype}): the parser misbehaved on this file ({reason}) and was replaced; "
            "the file is probably damaged or malicious: check it"
        )

    def _died(self, worker: _Worker, name: str, mimetype: str) -> Outcome:
        code = worker.process.exit_code() if worker.process is not None else None
        logger.warning(
            "parse worker %d died (exit code %s) on %s (%s); replacing it", worker.slot, code, name, mimetype
        )
        self._replace(worker)
        if self._closed:  # close() killed it
            return "raise", ParsePoolClosedError(
                f"the parse pool was closed while {name} ({mimetype}) was parsing; parse it again later"
            )
        if code == -signal.SIGABRT:
            # Rust (the tokenizer) and C++ libraries abort when an allocation hits the address-space cap we set
            return "raise", ParseMemoryError(
                f"{name} ({mimetype}): the parser aborted (SIGABRT), most likely at the memory cap "
                f"memory_mb={self.limits.memory_mb}; raise ingest.parse_memory_mb or split the file"
            )
        # not at a limit of ours (those are reported above, by the worker or by _timed_out): try again
        return (
            "crashed",
            f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}",
        )
