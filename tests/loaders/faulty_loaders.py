"""Loaders that misbehave on purpose; the parse pool imports them inside its workers via `extra_loaders`."""

import ctypes
import json
import os
import pickle
import resource
import signal
import stat
import struct
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from unittest import mock

from quart_app.loaders import registry
from quart_app.loaders.limits import ParseLimits

# mimetype -> "module:function" as ParsePool(extra_loaders=...) expects
FAULTY_LOADERS = {
    "test/hang": f"{__name__}:hang",
    "test/eat-memory": f"{__name__}:eat_memory",
    "test/segfault": f"{__name__}:segfault",
    "test/exit": f"{__name__}:hard_exit",
    "test/pid": f"{__name__}:report_pid",
    "test/concurrency": f"{__name__}:concurrency_probe",
    "test/escape": f"{__name__}:probe_isolation",
    "test/forge-reply": f"{__name__}:forge_reply",
    "test/block": f"{__name__}:block_until_released",
    "test/attempt": f"{__name__}:record_attempt",
    "test/quoting-failure": f"{__name__}:fail_after_loading_quoting_the_text",
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


def _attempt_read(target: str) -> str:
    try:
        Path(target).read_bytes()
    except OSError as exc:
        return type(exc).__name__
    return "read"


def _listable_fd_dirs_of_others() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                os.listdir(entry / "fd")
            except OSError:
                continue
            found.append(int(entry.name))
    return found


def _attempt_lift_memory_cap() -> str:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError) as exc:
        return type(exc).__name__
    return "lifted"


def probe_isolation(path: Path, limits: ParseLimits) -> str:
    """What a parser taken over by a malicious file could reach: its identity and environment, the files named in
    the handed file (a JSON list), its own initial environment, other processes' descriptors, its memory cap."""
    targets = [*json.loads(path.read_text(encoding="utf-8")), "/proc/self/environ"]
    return json.dumps(
        {
            "pid": os.getpid(),
            "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
            "groups": os.getgroups(),
            "environ": dict(os.environ),
            "reads": {target: _attempt_read(target) for target in targets},
            "fd_dirs_of_others": _listable_fd_dirs_of_others(),
            "lift_memory_cap": _attempt_lift_memory_cap(),
        }
    )


class _RunsOnUnpickling:
    """Unpickling this creates the directory `marker`: a stand-in for running any command in the app."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (self.marker,)


def _is_socket(fd: int) -> bool:
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:  # the descriptor listdir itself used
        return False


def forge_reply(path: Path, limits: ParseLimits) -> str:
    """Writes its own message to the app over the worker's socket, as a parser taken over could: "pickle <marker>"
    sends a pickle that runs a command when unpickled, "huge" announces a 16 GiB message."""
    kind, _, marker = path.read_text(encoding="utf-8").partition(" ")
    # the socket to the app is this process's only one; a duplicate, so closing ours leaves the worker's open
    (app_socket,) = (fd for fd in map(int, os.listdir("/proc/self/fd")) if _is_socket(fd))
    conn = Connection(os.dup(app_socket))
    if kind == "pickle":
        conn.send_bytes(pickle.dumps(_RunsOnUnpickling(marker)))
    else:
        conn._send(struct.pack("!i", -1) + struct.pack("!Q", 16 << 30))  # type: ignore[attr-defined]
    conn.close()
    time.sleep(3600)
    return ""


def fail_after_loading_quoting_the_text(path: Path, limits: ParseLimits) -> str:
    """Returns the file's text, which then fails in the worker outside any loader with a ValueError quoting it (as a
    tokenizer or text library could): this worker's `normalize_text` raises once, then is itself again."""

    def quoting_normalize_text(text: str) -> str:
        patch.stop()
        raise ValueError(f"cannot normalize {text!r}")

    patch = mock.patch.object(registry, "normalize_text", quoting_normalize_text)
    patch.start()
    return path.read_text(encoding="utf-8")


def _wait_for_release(gate: Path) -> None:
    while not (gate / "release").exists():
        time.sleep(0.01)


def block_until_released(path: Path, limits: ParseLimits) -> str:
    """A parse that lasts until the test says so: the file names a directory, then holds the text to return.

    Writes `started` into that directory, waits for `release` to appear there, and returns the rest of the file.
    """
    directory, _, text = path.read_text(encoding="utf-8").partition("\n")
    gate = Path(directory)
    (gate / "started").touch()
    _wait_for_release(gate)
    return text


# what record_attempt does after recording the attempt, by the name the file gives
_ATTEMPT_ACTIONS: dict[str, Callable[[Path, ParseLimits], object]] = {
    "wait": lambda gate, limits: _wait_for_release(gate),
    "sigkill": lambda gate, limits: os.kill(os.getpid(), signal.SIGKILL),
    "segfault": segfault,
    "eat-memory": eat_memory,
    "hang": hang,
}


def record_attempt(path: Path, limits: ParseLimits) -> str:
    """Counts the tries at one file: the file names a directory, an action and the text to return.

    Each attempt creates `attempt-<pid>` in that directory, then does the action: "wait" (until `release` appears
    there), "sigkill" (its own worker, as the host's out-of-memory killer would), "segfault", "eat-memory", "hang".
    """
    directory, action, text = path.read_text(encoding="utf-8").split("\n", 2)
    gate = Path(directory)
    (gate / f"attempt-{os.getpid()}").touch()
    _ATTEMPT_ACTIONS[action](gate, limits)
    return text


class AttemptGate:
    """The test's side of `test/attempt`: the directory the tries at one file are recorded in (writable by the
    workers, whatever user they run as), the file's content, and the workers that tried."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        directory.chmod(0o777)
        self.directory = directory

    def content(self, action: str, text: str) -> bytes:
        return f"{self.directory}\n{action}\n{text}".encode()

    def worker_pids(self) -> set[int]:
        return {int(entry.name.removeprefix("attempt-")) for entry in self.directory.glob("attempt-*")}

    def release(self) -> None:
        (self.directory / "release").touch()
