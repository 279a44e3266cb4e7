"""A bounded pool of parse worker processes with per-file timeout and memory cap, driven from asyncio.

Each worker is a separate process (spawn by default) so a parser that hangs, exhausts memory or crashes is
killed and replaced without touching the event loop or the other files. At most `workers` files parse at
once; further `parse()` calls wait for a free worker in FIFO order.
"""

import asyncio
import concurrent.futures
import logging
import multiprocessing
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

from .errors import (
    CorruptDocumentError,
    LoaderError,
    ParseMemoryError,
    ParsePoolClosedError,
    ParsePoolError,
    ParseTimeoutError,
)
from .limits import ParseLimits
from .parse_worker import worker_main

logger = logging.getLogger(__name__)

Outcome = tuple[str, Any]  # ("ok", text) or ("raise", exception)


@dataclass
class _Worker:
    """One slot of the pool; `process` is None when the slot must be (re)started before use."""

    slot: int
    process: BaseProcess | None = None
    conn: Connection | None = None
    jobs: int = 0


class ParsePool:
    """`async with ParsePool(2, ParseLimits()) as pool: text = await pool.parse(path, mimetype)`."""

    def __init__(
        self,
        workers: int = 2,
        limits: ParseLimits | None = None,
        *,
        start_method: str = "spawn",
        start_timeout_s: float = 60.0,
        max_jobs_per_worker: int = 200,
        extra_loaders: Mapping[str, str] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"ParsePool workers must be >= 1, got {workers}")
        if max_jobs_per_worker < 1:
            raise ValueError(f"ParsePool max_jobs_per_worker must be >= 1, got {max_jobs_per_worker}")
        self.workers = workers
        self.limits = limits or ParseLimits()
        if start_method not in ("spawn", "forkserver"):
            # fork would copy the event loop's threads and locks into the worker
            raise ValueError(f"ParsePool start_method must be 'spawn' or 'forkserver', got {start_method!r}")
        self._ctx = cast(SpawnContext | ForkServerContext, multiprocessing.get_context(start_method))
        self._start_timeout_s = start_timeout_s
        # a fresh process now and then returns the heap that big documents fragmented
        self._max_jobs = max_jobs_per_worker
        # mimetype -> "module:function", imported inside each worker (plugins and fault-injection tests)
        self._extra_loaders = dict(extra_loaders or {})
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
        """Start all workers (in parallel) and wait until each has imported the loaders."""
        if self._closed:
            raise ParsePoolClosedError("the parse pool is closed; create a new ParsePool instead of reopening it")
        if self._opened:
            return
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
        logger.info(
            "parse pool started: %d %s workers, limits %s", self.workers, self._ctx.get_start_method(), self.limits
        )

    async def parse(self, path: Path, mimetype: str) -> str:
        """Normalized text of one file; raises a `LoaderError` for a problem with this file only."""
        path = Path(path)
        if not self._opened or self._closed or self._idle is None or self._executor is None:
            raise ParsePoolClosedError(
                "the parse pool is " + ("closed" if self._closed else "not open; use 'async with' or await open()")
            )
        worker = await self._idle.get()
        if self._closed:
            self._idle.put_nowait(worker)
            raise ParsePoolClosedError("the parse pool was closed while this file waited for a worker")
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._executor, self._run, worker, path, mimetype)
        # the worker goes back to the queue when its job ends, even if our caller was cancelled meanwhile
        job.add_done_callback(lambda _job: self._job_done(worker))
        kind, value = await asyncio.shield(job)
        if kind == "ok":
            return str(value)
        raise value

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop accepting files, let running parses finish for up to `timeout_s`, then stop all workers."""
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
            await asyncio.wait_for(_collect(), timeout_s)
        except TimeoutError:
            logger.warning("parse pool close: parses still running after %.1fs, killing their workers", timeout_s)
            for worker in self._slots:
                if worker.process is not None and worker.process.is_alive():
                    worker.process.kill()
            # the jobs see their worker die, skip the restart because we are closed and hand the slots back
            await _collect()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, self._stop, w) for w in self._slots))
        self._executor.shutdown(wait=True)
        logger.info("parse pool closed")

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
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main,
            args=(child_conn, self.limits, self._extra_loaders),
            name=f"parse-worker-{worker.slot}",
            daemon=True,
        )
        process.start()
        child_conn.close()  # so a dead worker shows up as EOF on our end
        worker.process, worker.conn, worker.jobs = process, parent_conn, 0
        if not parent_conn.poll(self._start_timeout_s):
            self._kill(worker)
            raise ParsePoolError(f"parse worker {worker.slot} did not start within {self._start_timeout_s}s")
        try:
            kind, detail = parent_conn.recv()
        except (EOFError, OSError):
            kind, detail = "failed", f"exit code {process.exitcode}"
        if kind != "ready":
            self._kill(worker)
            raise ParsePoolError(f"parse worker {worker.slot} failed to start: {detail}")
        logger.debug("parse worker %d started (pid %s)", worker.slot, detail)

    def _kill(self, worker: _Worker) -> None:
        process, conn = worker.process, worker.conn
        worker.process = worker.conn = None
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(5)
            process.close()
        if conn is not None:
            conn.close()

    def _stop(self, worker: _Worker) -> None:
        if worker.conn is not None and worker.process is not None:
            try:
                worker.conn.send(None)
                worker.process.join(2)
            except (OSError, ValueError):
                pass
        self._kill(worker)

    def _recycle(self, worker: _Worker) -> None:
        logger.debug("parse worker %d recycled after %d files", worker.slot, worker.jobs)
        self._stop(worker)
        self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        self._kill(worker)
        if not self._closed:
            try:
                self._start(worker)
            except ParsePoolError as exc:
                # the slot stays empty and is started again by the next file that gets it
                logger.warning("parse worker %d could not be replaced: %s", worker.slot, exc)

    def _run(self, worker: _Worker, path: Path, mimetype: str) -> Outcome:
        try:
            return self._run_unguarded(worker, path, mimetype)
        except Exception as exc:  # never lose the slot: a failed job must still hand the worker back
            logger.exception("parse pool slot %d failed unexpectedly", worker.slot)
            self._kill(worker)
            return "raise", ParsePoolError(f"parse worker {worker.slot} failed: {type(exc).__name__}: {exc}")

    def _run_unguarded(self, worker: _Worker, path: Path, mimetype: str) -> Outcome:
        if worker.process is None or worker.conn is None or not worker.process.is_alive():
            self._replace(worker)
            if worker.conn is None:
                return "raise", ParsePoolError(f"no parse worker could be started for {path.name}; see the log")
        conn = worker.conn
        assert conn is not None and worker.process is not None
        limit = self.limits.timeout_s
        try:
            conn.send((str(path), mimetype))
            ready = conn.poll(limit)
            reply = conn.recv() if ready else None
        except (EOFError, OSError):
            return "raise", self._died(worker, path, mimetype)
        if reply is None:
            logger.warning(
                "parse of %s (%s) timed out after %.0fs; replacing worker %d", path.name, mimetype, limit, worker.slot
            )
            self._replace(worker)
            return "raise", ParseTimeoutError(
                f"{path.name} ({mimetype}): parsing took longer than timeout_s={limit:g}s and was stopped; "
                "raise the parse timeout if such files are expected"
            )
        kind, value = reply
        worker.jobs += 1
        if kind == "ok":
            return "ok", value
        if kind == "memory":
            logger.warning("parse of %s (%s) ran out of memory; replacing worker %d", path.name, mimetype, worker.slot)
            self._replace(worker)
            return "raise", ParseMemoryError(
                f"{path.name} ({mimetype}): parsing needed more than memory_mb={self.limits.memory_mb} MB and was "
                "stopped; raise the parse memory limit or split the file"
            )
        if isinstance(value, LoaderError | OSError):
            return "raise", value
        return "raise", CorruptDocumentError(f"{path.name} ({mimetype}): {value}")

    def _died(self, worker: _Worker, path: Path, mimetype: str) -> Exception:
        process = worker.process
        if process is not None:
            process.join(5)
        code = process.exitcode if process is not None else None
        logger.warning(
            "parse worker %d died (exit code %s) on %s (%s); replacing it", worker.slot, code, path.name, mimetype
        )
        self._replace(worker)
        if self._closed:
            return ParsePoolClosedError(
                f"the parse pool was closed while {path.name} ({mimetype}) was parsing; parse it again later"
            )
        if code == -signal.SIGKILL:
            return ParseMemoryError(
                f"{path.name} ({mimetype}): the parse worker was killed (SIGKILL, most likely the out-of-memory "
                "killer); raise the machine's memory or lower the parse memory limit"
            )
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        return CorruptDocumentError(
            f"{path.name} ({mimetype}): the parser crashed ({how}); the file is probably damaged: check or re-save it"
        )
