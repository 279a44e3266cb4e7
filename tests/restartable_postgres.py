"""An embedded PostgreSQL of its own that a test may stop, kill and start again (the session cluster must stay up)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from postgres_server import server_command

from appliance.postgres import EmbeddedPostgres


class RestartablePostgres:
    """One cluster in a temp dir, run as a foreground postgres process (the same `exec_server` supervisord runs)."""

    def __init__(self) -> None:
        # not under pytest's basetemp: a concurrent pytest session resets that to 0700, locking out the postgres user
        self.root = Path(tempfile.mkdtemp(prefix="ccb-pg-restart-", dir="/tmp"))
        self.cluster = EmbeddedPostgres(pgdata=self.root / "pgsql", socket_dir=self.root / "run")
        self.cluster.ensure_initialised()
        self.log_path = self.root / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        # a fresh database of the current test (set by the `restartable_pg` fixture)
        self.test_dsn = self.dsn

    @property
    def dsn(self) -> str:
        """The app role on database ccb over the unix socket."""
        return self.cluster.dsn

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the server and wait until it accepts connections."""
        if self.running:
            return
        deadline = time.monotonic() + timeout_s
        process = self._spawn()
        while not self._accepts():
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start; see {self.log_path}")
            if process.poll() is not None:
                # after a kill -9 the old backends may hold the shared memory for a moment: start again
                time.sleep(0.2)
                process = self._spawn()
            else:
                time.sleep(0.05)
        self.starts += 1

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(server_command(self.cluster), stdout=log, stderr=subprocess.STDOUT)
        return self.process

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def stop_fast(self, timeout_s: float = 30.0) -> None:
        """`pg_ctl stop -m fast`: SIGINT to the postmaster, which ends every session and exits."""
        self._signal(signal.SIGINT, timeout_s)

    def kill(self) -> None:
        """kill -9 of the postmaster; its backends notice and exit on their own."""
        self._signal(signal.SIGKILL, 30.0)

    def _signal(self, signum: int, timeout_s: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signum)
        self.process.wait(timeout=timeout_s)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def remove(self) -> None:
        """Stop (smart shutdown, then kill) and delete the cluster."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
