"""Loaders that misbehave on purpose; the parse pool imports them inside its workers via `extra_loaders`."""

import ctypes
import os
import time
from pathlib import Path

from quart_app.loaders.limits import ParseLimits

# mimetype -> "module:function" as ParsePool(extra_loaders=...) expects
FAULTY_LOADERS = {
    "test/hang": f"{__name__}:hang",
    "test/eat-memory": f"{__name__}:eat_memory",
    "test/segfault": f"{__name__}:segfault",
    "test/exit": f"{__name__}:hard_exit",
    "test/pid": f"{__name__}:report_pid",
    "test/concurrency": f"{__name__}:concurrency_probe",
}


def hang(path: Path, limits: ParseLimits) -> str:
    """Never returns within any reasonable timeout."""
    time.sleep(3600)
    return ""


def eat_memory(path: Path, limits: ParseLimits) -> str:
    """Allocates far more than the worker's memory cap, touching it like a parser building a tree."""
    blocks = [bytearray(64 * 1024 * 1024) for _ in range(1024)]
    return str(len(blocks))


def segfault(path: Path, limits: ParseLimits) -> str:
    """Dereferences NULL, as a buggy C extension would."""
    ctypes.string_at(0)
    return ""


def hard_exit(path: Path, limits: ParseLimits) -> str:
    """Leaves the process without unwinding, as a library calling exit() would."""
    os._exit(3)


def report_pid(path: Path, limits: ParseLimits) -> str:
    """The worker's pid, so tests can see which worker parsed a file."""
    return f"pid {os.getpid()} parsed {path.name}"


def concurrency_probe(path: Path, limits: ParseLimits) -> str:
    """Marks itself active in the directory named by the file, waits a little, reports how many were active."""
    active = Path(path.read_text(encoding="utf-8").strip())
    marker = active / str(os.getpid())
    marker.touch()
    try:
        time.sleep(0.3)
        return str(len(list(active.iterdir())))
    finally:
        marker.unlink()
