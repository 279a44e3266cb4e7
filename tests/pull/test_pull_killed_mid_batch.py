"""A kill -9 (or an OOM kill) of the real app server in the middle of a documents batch, the container then recreated
with a new hostname on the same volume (an update): the restarted server indexes that batch at once, not when its
lease (15 min) or the PHP app's 24 h lock of its rows ends; a replica on another volume leaves it to the lease. Real
hypercorn, real database and embedder; each server has a hostname of its own (a UTS namespace, as a container)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest
from contract_kit import contract_config, signed_headers
from live_app import start_live_app
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import FAST_PULL, LABEL
from server_process import ServerProcess
from waiting import wait_for

pytestmark = pytest.mark.slow

# python -c THIS HOSTNAME --bind …: the app server under a hostname of its own (socket.gethostname() says it)
UNDER_HOSTNAME = (
    "import ctypes, runpy, socket, sys\n"
    "if ctypes.CDLL(None, use_errno=True).unshare(0x04000000):  # CLONE_NEWUTS\n"
    "    raise OSError(ctypes.get_errno(), 'unshare(CLONE_NEWUTS)')\n"
    "socket.sethostname(sys.argv.pop(1))\n"
    "sys.argv[0] = 'quart_app.app_server'\n"
    "runpy.run_module('quart_app.app_server', run_name='__main__', alter_sys=True)\n"
)


def _hostnames_can_be_given() -> bool:
    probe = UNDER_HOSTNAME.split("socket.sethostname")[0] + "socket.sethostname('probe')\n"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False).returncode == 0


def _start(
    storage: Path, hostname: str, tmp_path: Path, dsn: str, embedder_url: str, nc: FakePullNextcloud
) -> tuple[str, ServerProcess]:
    config = contract_config(embedder_url, pull=FAST_PULL)
    program = ("-c", UNDER_HOSTNAME, hostname)
    base, server = start_live_app(storage, dsn, config, tmp_path / f"{hostname}.log", program=program, env=nc.env())
    response = httpx.put(f"{base}/enabled", params={"enabled": "1"}, headers=signed_headers(), timeout=60)
    assert response.status_code == 200, response.text
    return base, server


def _sources(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT source_id FROM chunks").fetchall()}


def test_a_batch_in_hand_when_the_app_is_killed_goes_first_after_a_restart_under_another_hostname(
    tmp_path: Path, fresh_dsn: str, embedder_url: str, nextcloud: FakePullNextcloud
) -> None:
    if not _hostnames_can_be_given():
        pytest.skip("a hostname of its own (unshare CLONE_NEWUTS) needs CAP_SYS_ADMIN")
    fast = [nextcloud.add_file(["alice"], f"files/fast{i}.txt", LABEL + f" Fast {i}.".encode()) for i in range(3)]
    held = nextcloud.add_file(["alice"], "files/held.txt", LABEL + b" Held.")
    released = nextcloud.hold_file(held)  # its download sends its headers, then waits: the batch is in hand
    storage = tmp_path / "storage"
    _, server = _start(storage, "container-before", tmp_path, fresh_dsn, embedder_url, nextcloud)
    try:
        wait_for(
            lambda: nextcloud.file_fetches[held] == 1 and len(nextcloud.locked_rows()["files"]) == 4,
            timeout=120,
            what="the batch of four claimed and the held file downloading",
        )
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(60)
    finally:
        server.stop()
    # killed mid-batch: nothing acknowledged, every row locked in Nextcloud for 24 h (the fake's clock does not move)
    assert nextcloud.acked_documents()["files"] == [] and len(nextcloud.locked_rows()["files"]) == 4
    released.set()

    # another replica (its own volume) indexes new work meanwhile, and leaves the killed batch to its lease
    other = nextcloud.add_file(["alice"], "files/other.txt", LABEL + b" Other.")
    _, server = _start(tmp_path / "other-volume", "replica-elsewhere", tmp_path, fresh_dsn, embedder_url, nextcloud)
    try:
        wait_for(lambda: nextcloud.file_fetches[other] == 1, timeout=120, what="the other replica's file fetched")
        wait_for(lambda: len(nextcloud.acked_documents()["files"]) == 1, timeout=120, what="its acknowledgement")
    finally:
        server.stop()
    assert nextcloud.file_fetches[held] == 1 and len(nextcloud.locked_rows()["files"]) == 4

    # the container recreated on the same volume: a new hostname
    _, server = _start(storage, "container-after", tmp_path, fresh_dsn, embedder_url, nextcloud)
    try:
        wait_for(
            lambda: len(nextcloud.acked_documents()["files"]) == 5,
            timeout=120,
            what="the killed batch indexed after the restart",
        )
    finally:
        server.stop()
    assert nextcloud.queue_rows()["files"] == []
    assert _sources(fresh_dsn) == {f"files__default: {f}" for f in [*fast, held, other]}
