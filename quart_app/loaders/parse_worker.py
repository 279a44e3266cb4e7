"""One parse worker process: `python -m quart_app.loaders.parse_worker FD`, started by the parse pool.

It reads its setup from the app over the socket FD, imports every loader and builds the chunker, drops to the
parser user, caps its memory, then turns each file it is handed (as an open descriptor) into chunks. The messages
are described in `worker_protocol`.
"""

import importlib
import logging
import os
import resource
import signal
import sys
from collections.abc import Mapping
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle
from pathlib import Path
from typing import Any

from appliance.json_logging import configure_json_logging
from quart_app.chunking.chunker import TokenChunker

from .errors import LoaderError
from .failure_site import failure_site
from .library_log_redaction import LibraryTextFilter
from .limits import MIB
from .named_file import named_file
from .registry import Loader, extract_text, preload_loaders
from .worker_identity import drop_privileges
from .worker_protocol import BATCH_CHARS, WorkerSetup, encode, error_message, error_name

# a few words in two pieces: makes the tokenizer start its thread pool before the memory cap is set
_WARM_UP_TEXT = "Warm up the tokenizer.\n\nIts thread pool starts now."
# its lines go to the app's stderr (logs/app.log), told apart by this program name; warnings and up: parser
# libraries' info lines are chatter
PROGRAM = "parser"
LOG_LEVEL = "WARNING"
# run as __main__: by its import name, so the library-text filter knows its lines for ours
logger = logging.getLogger("quart_app.loaders.parse_worker")


def _resolve(spec: str) -> Loader:
    module_name, _, attr = spec.partition(":")
    loader: Loader = getattr(importlib.import_module(module_name), attr)
    return loader


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def cap_memory(memory_mb: int) -> int:
    """Limit this process's address space to its current size plus `memory_mb`; returns the cap in bytes.

    Soft and hard limit alike, so a parser that was taken over cannot lift it again.
    """
    try:
        current = _address_space_bytes()
    except OSError:  # no /proc: treat the setting as an absolute cap
        current = 0
    cap = current + memory_mb * MIB
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return cap


def _send(conn: Connection, message: list[Any]) -> None:
    conn.send_bytes(encode(message))


def _chunk_file(
    conn: Connection,
    path: Path,
    mimetype: str,
    setup: WorkerSetup,
    loaders: Mapping[str, Loader],
    chunker: TokenChunker,
) -> None:
    text = extract_text(path, mimetype, setup.limits, loaders)
    batch: list[list[Any]] = []
    batch_chars = count = 0
    for chunk in chunker.split(text, mimetype):
        batch.append([chunk.text, chunk.start, chunk.token_count, chunk.header])
        batch_chars += len(chunk.text)
        if batch_chars >= BATCH_CHARS:
            _send(conn, ["chunks", batch])
            count += len(batch)
            batch, batch_chars = [], 0
    if batch:
        _send(conn, ["chunks", batch])
        count += len(batch)
    _send(conn, ["done", count])


def _serve(conn: Connection, setup: WorkerSetup, loaders: Mapping[str, Loader], chunker: TokenChunker) -> None:
    while True:
        try:
            request = conn.recv()
            if request is None:
                return
            name, mimetype = request
            fd = recv_handle(conn)
        except (EOFError, OSError):
            return
        # the file handed over as descriptor N, opened as /proc/self/fd/N, named in messages as the app names it
        path = named_file(f"/proc/self/fd/{fd}", name)
        try:
            _chunk_file(conn, path, mimetype, setup, loaders, chunker)
        except MemoryError:
            # a fresh process replaces this fragmented heap
            _send(conn, ["memory", f"address space cap of {setup.limits.memory_mb} MB above idle size reached"])
            return
        except Exception as exc:
            if not isinstance(exc, LoaderError):
                # the app is told the class only (worker_error); the log says where, still without the message
                logger.warning(
                    "parse of %s (%s) failed outside its loader: %s; its message is withheld (it may quote the file)",
                    path.name,
                    mimetype,
                    failure_site(exc),
                )
            _send(conn, ["error", error_name(exc), error_message(exc)])
        finally:
            os.close(fd)


def main() -> None:
    """Set up, then serve files until told to stop or the app goes away."""
    conn = Connection(int(sys.argv[1]))
    # Ctrl-C goes to the whole process group; the app decides when workers stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # unqueued: no thread of its own, and a line is out before a SIGKILL can lose it
    # parser libraries quote what they read, in messages and tracebacks: a user's file must not reach the log
    configure_json_logging(PROGRAM, LOG_LEVEL, queued=False, filters=[LibraryTextFilter()])
    setup: WorkerSetup = conn.recv()
    try:
        loaders = {mimetype: _resolve(spec) for mimetype, spec in setup.extra_loaders.items()}
        preload_loaders()
        chunker = setup.chunker.build()
        list(chunker.split(_WARM_UP_TEXT, "text/plain"))
        # from here on, everything this process runs is already imported: it needs no file but the ones handed in
        drop_privileges(setup.identity)
        cap_memory(setup.limits.memory_mb)
    except Exception as exc:
        _send(conn, ["failed", f"{type(exc).__name__}: {exc}"])
        return
    _send(conn, ["ready", os.getpid()])
    _serve(conn, setup, loaders, chunker)


if __name__ == "__main__":
    main()
    # every answer is sent and every log line written (unqueued): tearing down the interpreter's heap of parser
    # modules only delays the exit the pool waits for (~0.4 s of the app's stop budget, at every recycle)
    sys.stderr.flush()
    os._exit(0)
