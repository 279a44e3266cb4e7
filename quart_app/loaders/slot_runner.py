"""The thread side of the parse pool: a slot's worker process started, replaced and stopped, and one file's
exchange with it (the descriptor handed over, chunk batches checked as they come, the ending turned into an Outcome).

Blocking calls; the pool makes them from its threads, one slot per thread at a time.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import (
    CorruptDocumentError,
    ParseMemoryError,
    ParsePoolClosedError,
    ParsePoolError,
    ParseTimeoutError,
)
from .limits import ParseLimits
from .worker_identity import WorkerIdentity
from .worker_process import WorkerProcess
from .worker_protocol import (
    BATCH_CHARS,
    DocumentChunk,
    MalformedReplyError,
    WorkerSetup,
    checked_chunks,
    worker_error,
)

logger = logging.getLogger(__name__)

# ("ok", chunks), ("raise", exception) or ("crashed", how the worker died: the file may be parsed again)
Outcome = tuple[str, Any]


@dataclass
class WorkerSlot:
    """One slot of the pool; `process` is None when the slot must be (re)started before use."""

    slot: int
    process: WorkerProcess | None = None
    jobs: int = 0


class SlotRunner:
    """Runs files on the pool's slots; `closed` (set by the pool's close) stops it starting workers or parsing."""

    def __init__(self, setup: WorkerSetup, start_timeout_s: float) -> None:
        self._setup = setup
        self._limits: ParseLimits = setup.limits
        self._identity: WorkerIdentity | None = setup.identity
        self._chunk_tokens = setup.chunker.chunk_tokens
        self._start_timeout_s = start_timeout_s
        # chunks overlap by at most half, so more text than twice the document's is a worker gone wrong
        self._max_reply_chars = 2 * self._limits.max_text_chars + BATCH_CHARS
        self.closed = False

    def start(self, worker: WorkerSlot) -> None:
        """A new worker process in the slot, ready for its first file; else ParsePoolError."""
        worker.process = WorkerProcess.start(self._setup, worker.slot, self._start_timeout_s)
        worker.jobs = 0

    def kill(self, worker: WorkerSlot) -> None:
        """The slot's process killed at once; the slot left empty."""
        process, worker.process = worker.process, None
        if process is not None:
            process.kill()

    def stop(self, worker: WorkerSlot) -> None:
        """The slot's process asked to exit; the slot left empty."""
        process, worker.process = worker.process, None
        if process is not None:
            process.stop()

    def recycle(self, worker: WorkerSlot) -> None:
        """The slot's process stopped and a fresh one started."""
        logger.debug("parse worker %d recycled after %d files", worker.slot, worker.jobs)
        self.stop(worker)
        self.replace(worker)

    def replace(self, worker: WorkerSlot) -> None:
        """The slot's process killed and, unless closed, another started (an empty slot if it cannot be)."""
        self.kill(worker)
        if not self.closed:
            try:
                self.start(worker)
            except (ParsePoolError, OSError) as exc:
                # the slot stays empty and is started again by the next file that gets it
                logger.warning("parse worker %d could not be replaced: %s", worker.slot, exc)

    def run(self, worker: WorkerSlot, path: Path, name: str, mimetype: str) -> Outcome:
        """One file parsed on the slot's worker; never raises, so the slot always goes back to the pool."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            return "raise", exc
        try:
            return self._run_unguarded(worker, fd, name, mimetype)
        except Exception as exc:  # never lose the slot: a failed job must still hand the worker back
            logger.exception("parse pool slot %d failed unexpectedly", worker.slot)
            self.kill(worker)
            return "raise", ParsePoolError(f"parse worker {worker.slot} failed: {type(exc).__name__}: {exc}")
        finally:
            os.close(fd)

    def _run_unguarded(self, worker: WorkerSlot, fd: int, name: str, mimetype: str) -> Outcome:
        if worker.process is None or not worker.process.alive:
            self.replace(worker)
            if self.closed:  # close() came while the worker started and did not see it: it must not parse now
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

    def _exchange(self, worker: WorkerSlot, fd: int, name: str, mimetype: str) -> Outcome:
        process = worker.process
        assert process is not None
        try:
            process.hand_over(name, mimetype, fd)
        except OSError:
            return self._died(worker, name, mimetype)
        limit = self._limits.timeout_s
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
                batch = checked_chunks(args[0] if args else None, self._chunk_tokens)
                chars += sum(len(chunk.text) for chunk in batch)
                if chars > self._max_reply_chars:
                    raise MalformedReplyError(f"more than {self._max_reply_chars} characters of chunks")
                chunks.extend(batch)
            except (EOFError, ConnectionError):
                return self._died(worker, name, mimetype)
            except (OSError, MalformedReplyError) as exc:  # OSError: "bad message length", too long
                return "raise", self._misbehaved(worker, name, mimetype, str(exc))

    def _timed_out(self, worker: WorkerSlot, name: str, mimetype: str) -> Exception:
        limit = self._limits.timeout_s
        logger.warning(
            "parse of %s (%s) timed out after %.0fs; replacing worker %d", name, mimetype, limit, worker.slot
        )
        self.replace(worker)
        return ParseTimeoutError(
            f"{name} ({mimetype}): parsing took longer than timeout_s={limit:g}s and was stopped; "
            "raise the parse timeout if such files are expected"
        )

    def _outcome(
        self, worker: WorkerSlot, name: str, mimetype: str, kind: str, args: list[Any], chunks: list[DocumentChunk]
    ) -> Outcome:
        match kind, args:
            case "done", [int() as count] if count == len(chunks):
                return "ok", chunks
            case "error", [str() as error, str() as message]:
                return "raise", worker_error(error, message, name, mimetype)
            case "memory", _:
                logger.warning("parse of %s (%s) ran out of memory; replacing worker %d", name, mimetype, worker.slot)
                self.replace(worker)
                return "raise", ParseMemoryError(
                    f"{name} ({mimetype}): parsing needed more than memory_mb={self._limits.memory_mb} MB and "
                    "was stopped; raise ingest.parse_memory_mb or split the file"
                )
        raise MalformedReplyError(f"an unexpected {kind!r} message")

    def _misbehaved(self, worker: WorkerSlot, name: str, mimetype: str, reason: str) -> Exception:
        logger.warning(
            "parse worker %d sent a malformed reply on %s (%s): %s; replacing it",
            worker.slot,
            name,
            mimetype,
            reason,
        )
        self.replace(worker)
        return CorruptDocumentError(
            f"{name} ({mimetype}): the parser misbehaved on this file ({reason}) and was replaced; "
            "the file is probably damaged or malicious: check it"
        )

    def _died(self, worker: WorkerSlot, name: str, mimetype: str) -> Outcome:
        code = worker.process.exit_code() if worker.process is not None else None
        logger.warning(
            "parse worker %d died (exit code %s) on %s (%s); replacing it", worker.slot, code, name, mimetype
        )
        self.replace(worker)
        if self.closed:  # close() killed it
            return "raise", ParsePoolClosedError(
                f"the parse pool was closed while {name} ({mimetype}) was parsing; parse it again later"
            )
        if code == -signal.SIGABRT:
            # Rust (the tokenizer) and C++ libraries abort when an allocation hits the address-space cap we set
            return "raise", ParseMemoryError(
                f"{name} ({mimetype}): the parser aborted (SIGABRT), most likely at the memory cap "
                f"memory_mb={self._limits.memory_mb}; raise ingest.parse_memory_mb or split the file"
            )
        # not at a limit of ours (those are reported above, by the worker or by _timed_out): try again
        return (
            "crashed",
            f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}",
        )
