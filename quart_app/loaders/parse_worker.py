"""Entry point of one parse worker process: caps its memory, then parses files sent over a pipe.

Protocol (parent -> worker): `(path: str, mimetype: str)` or `None` to stop.
Worker -> parent: `("ready", pid)` once, then per request `("ok", text)`, `("error", exception)` or
`("memory", detail)`; after "memory" the worker exits so a fresh process replaces its fragmented heap.
"""

import importlib
import os
import resource
import signal
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path

from .errors import CorruptDocumentError
from .limits import MIB, ParseLimits
from .registry import Loader, extract_text, preload_loaders


def _resolve(spec: str) -> Loader:
    module_name, _, attr = spec.partition(":")
    loader: Loader = getattr(importlib.import_module(module_name), attr)
    return loader


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def cap_memory(memory_mb: int) -> int:
    """Limit this process's address space to its current size plus `memory_mb`; returns the cap in bytes."""
    try:
        current = _address_space_bytes()
    except OSError:  # no /proc: treat the setting as an absolute cap
        current = 0
    cap = current + memory_mb * MIB
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    return cap


def _picklable(exc: BaseException) -> BaseException:
    # LoaderErrors take one message argument and pickle; anything else is flattened so the reply always arrives
    if isinstance(exc, CorruptDocumentError | OSError) or type(exc).__module__.startswith("quart_app."):
        return exc
    return CorruptDocumentError(f"{type(exc).__name__}: {exc}")


def worker_main(conn: Connection, limits: ParseLimits, extra_loaders: Mapping[str, str]) -> None:
    """Serve parse requests until told to stop or the parent goes away."""
    # Ctrl-C goes to the whole process group; the parent decides when workers stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        loaders = {mimetype: _resolve(spec) for mimetype, spec in extra_loaders.items()}
    except (ImportError, AttributeError, ValueError) as exc:
        conn.send(("failed", f"cannot import an extra loader ({type(exc).__name__}: {exc})"))
        return
    preload_loaders()
    cap_memory(limits.memory_mb)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        path, mimetype = request
        try:
            conn.send(("ok", extract_text(Path(path), mimetype, limits, loaders)))
        except MemoryError:
            conn.send(("memory", f"address space cap of {limits.memory_mb} MB above idle size reached"))
            return
        except Exception as exc:
            conn.send(("error", _picklable(exc)))
