"""This replica's name for the documents batch it has in hand (`pull_file_retries.in_batch_of`): the same when the
container comes back with a new hostname on the same volume, another replica's always differs.

The name used to be host + spool directory: a recreated container (an update: new hostname, same volume) left the
batch it had in hand to the 15-minute lease. A directory path alone would not do either: Docker hosts mount their
volumes at the same path. So the name is an id created once in a slot file in the role's run directory, on the
volume. A live replica holds its slot's `flock`: the slot a dead process held (its lock went with it) is the first
one free for its restart, and two app servers on one volume and role (the appliance's run lock refuses a second
appliance, an app server started by hand is not stopped by it) take different slots.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

# more replicas of one role on one volume than this is not a deploy AppAPI makes
MAX_SLOTS = 64
_ID = re.compile(r"[0-9a-f]{32}")


class ReplicaSlot:
    """A slot held for this process's life (`close()` lets it go); `name` is the replica's name for its batch."""

    def __init__(self, name: str, fd: int | None) -> None:
        self.name = name
        self._fd = fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def claim_replica_slot(run_dir: Path) -> ReplicaSlot:
    """The first slot in `run_dir` no live process holds, its id created if it has none. A directory that cannot hold
    locks gives a name of host + directory, with a warning: safe, but a restart under another hostname then waits for
    its batch's lease."""
    try:
        for number in range(MAX_SLOTS):
            path = run_dir / f"replica-{number}.id"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            except OSError:
                os.close(fd)
                raise
            slot = ReplicaSlot(f"replica {_slot_id(fd)}", fd)
            log.info("documents queue: this replica is %s (%s)", slot.name, path)
            return slot
        reason = f"all {MAX_SLOTS} replica slots are held by live processes"
    except OSError as exc:
        reason = f"{exc.strerror or exc}"
    name = f"{socket.gethostname()}:{run_dir}"
    log.warning(
        "documents queue: no replica slot in %s (%s); this replica is named by its host, so a restart under another"
        " hostname leaves its batch in hand to the lease",
        run_dir,
        reason,
    )
    return ReplicaSlot(name, None)


def _slot_id(fd: int) -> str:
    """The id in the slot file, written now if it has none (a new slot, or one cut short while being written)."""
    written = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    if _ID.fullmatch(written):
        return written
    created = uuid.uuid4().hex
    os.ftruncate(fd, 0)
    os.pwrite(fd, created.encode("ascii") + b"\n", 0)
    os.fsync(fd)
    return created
