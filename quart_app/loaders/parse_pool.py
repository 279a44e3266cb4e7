"""A bounded pool of parse worker processes with per-file timeout and memory cap, driven from asyncio.

Each worker is a separate process, so a parser that hangs, exhausts memory or crashes is killed and replaced
without touching the event loop or the other files. A worker parses *and chunks*: the document's text and the
tokenizer's working memory stay under the worker's memory cap, and the app receives only the chunks. Workers run
as the unprivileged parser user with a scrubbed environment (see `worker_identity`) and get each file as an open
descriptor, never a path. At most `workers` files parse at once; further calls wait for a free worker in FIFO order.

A worker that dies under a file without the pool having killed it (for the file's time or memory limit) and
without reporting an error was killed from outside (the host's out-of-memory killer, an administrator) or crashed:
the file is parsed again in another worker, up to `crash_retries` times, then fails as `ParserCrashedError`.

This module schedules files onto slots from asyncio; what runs in the pool's threads is in `slot_runner`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from .errors import ParsePoolClosedError, ParserCrashedError
from .limits import ParseLimits
from .slot_runner import Outcome, SlotRunner, WorkerSlot
from .worker_identity import PARSER_OS_USER, WorkerIdentity, parser_identity
from .worker_protocol import DocumentChunk, WorkerSetup

if TYPE_CHECKING:
    from quart_app.chunking.chunker_spec import ChunkerSpec

logger = logging.getLogger(__name__)


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
        self._identity: WorkerIdentity | None = None
        self._runner: SlotRunner | None = None
        self._idle: asyncio.Queue[WorkerSlot] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._slots: list[WorkerSlot] = []
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
        setup = WorkerSetup(self.limits, self._chunker, self._identity, self._extra_loaders)
        runner = self._runner = SlotRunner(setup, self._start_timeout_s)
        self._executor = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="parse-pool")
        self._idle = asyncio.Queue()
        self._slots = [WorkerSlot(slot) for slot in range(self.workers)]
        loop = asyncio.get_running_loop()
        try:
            await asyncio.gather(*(loop.run_in_executor(self._executor, runner.start, w) for w in self._slots))
        except BaseException:
            for worker in self._slots:
                runner.kill(worker)
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
        if not self._opened or self._closed or self._idle is None or self._executor is None or self._runner is None:
            raise ParsePoolClosedError(
                "the parse pool is " + ("closed" if self._closed else "not open; use 'async with' or await open()")
            )
        worker = await self._idle.get()
        if self._closed:
            self._idle.put_nowait(worker)
            raise ParsePoolClosedError("the parse pool was closed while this file waited for a worker")
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._executor, self._runner.run, worker, path, name, mimetype)
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
        if self._runner is not None:
            self._runner.closed = True
        if not self._opened or self._idle is None or self._executor is None or self._runner is None:
            return
        runner = self._runner
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
            await asyncio.gather(*(loop.run_in_executor(self._executor, runner.stop, w) for w in self._slots))
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

    def _job_done(self, worker: WorkerSlot) -> None:
        idle, executor, runner = self._idle, self._executor, self._runner
        if idle is None or executor is None or runner is None:
            return
        if worker.jobs >= self._max_jobs and not self._closed:
            recycle = asyncio.get_running_loop().run_in_executor(executor, runner.recycle, worker)
            recycle.add_done_callback(lambda _recycle: idle.put_nowait(worker))
        else:
            idle.put_nowait(worker)
