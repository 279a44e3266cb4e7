"""The documents loop's replica name (pull/replica_slot.py): kept on the volume across restarts whatever the hostname,
distinct for replicas sharing a volume and for another volume at the same path; real files and real flock."""

from __future__ import annotations

import errno
import fcntl
import logging
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from quart_app.pull.replica_slot import ReplicaSlot, claim_replica_slot

# a process that holds a slot of the directory in argv[1] and says its name, then waits to be killed
HOLDER = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from quart_app.pull.replica_slot import claim_replica_slot\n"
    "print(claim_replica_slot(Path(sys.argv[1])).name, flush=True)\n"
    "time.sleep(600)\n"
)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def slots() -> Iterator[list[ReplicaSlot]]:
    """Slots a test claims, let go at its end."""
    held: list[ReplicaSlot] = []
    yield held
    for slot in held:
        slot.close()


def test_a_restart_on_the_same_volume_is_the_same_replica(tmp_path: Path) -> None:
    first = claim_replica_slot(tmp_path)
    first.close()
    again = claim_replica_slot(tmp_path)
    again.close()
    assert again.name == first.name and first.name.startswith("replica ")


def test_replicas_sharing_a_volume_are_told_apart_and_a_freed_slot_goes_to_the_next(
    tmp_path: Path, slots: list[ReplicaSlot]
) -> None:
    slots += [claim_replica_slot(tmp_path), claim_replica_slot(tmp_path)]
    assert slots[0].name != slots[1].name
    slots[0].close()
    slots.append(claim_replica_slot(tmp_path))
    assert slots[2].name == slots[0].name


def test_another_volume_at_the_same_path_is_another_replica(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    first = claim_replica_slot(spool)
    first.close()
    shutil.rmtree(spool)
    spool.mkdir()
    other = claim_replica_slot(spool)
    other.close()
    assert other.name != first.name


def test_the_slot_of_a_killed_process_goes_to_its_restart(tmp_path: Path, slots: list[ReplicaSlot]) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=REPO
    ) as holder:
        try:
            assert holder.stdout is not None
            killed_name = holder.stdout.readline().strip()
            slots.append(claim_replica_slot(tmp_path))
            assert slots[0].name != killed_name  # held while it lives
        finally:
            holder.kill()
            holder.wait(60)
    slots.append(claim_replica_slot(tmp_path))
    assert slots[1].name == killed_name


def test_a_slot_file_without_an_id_gets_one(tmp_path: Path) -> None:
    (tmp_path / "replica-0.id").write_text("cut sh")
    slot = claim_replica_slot(tmp_path)
    slot.close()
    written = (tmp_path / "replica-0.id").read_text().strip()
    assert slot.name == f"replica {written}" and len(written) == 32


def test_a_directory_that_cannot_hold_locks_names_the_replica_by_its_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with caplog.at_level(logging.WARNING, "quart_app.pull.replica_slot"):
        slot = claim_replica_slot(tmp_path)
    slot.close()
    assert slot.name == f"{socket.gethostname()}:{tmp_path}"
    assert caplog.messages == [
        f"documents queue: no replica slot in {tmp_path} (No locks available); this replica is named by its host, so"
        " a restart under another hostname leaves its batch in hand to the lease"
    ]
