"""TCP on 127.0.0.1 only when configured, and then with a generated password (never a fixed default)."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from appliance_kit import clean_env, free_port
from postgres_server import server_command

from appliance.postgres import EmbeddedPostgres
from appliance.storage import StorageLayout


def _tcp_dsn(cluster: EmbeddedPostgres) -> str:
    """What an admin builds from vector_db_data/ccb_password: the app role over TCP on 127.0.0.1."""
    password = cluster.tcp_password_file.read_text(encoding="utf-8").strip()
    return f"postgresql://ccb:{password}@127.0.0.1:{cluster.tcp_port}/ccb"


def _serve(cluster: EmbeddedPostgres) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(server_command(cluster), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(cluster.dsn, connect_timeout=2):
                return server
        except psycopg.OperationalError:
            assert server.poll() is None and time.monotonic() < deadline, "embedded PostgreSQL did not start"
            time.sleep(0.1)


@pytest.fixture
def served(private_dir: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    servers: list[subprocess.Popen[bytes]] = []
    yield servers
    for server in servers:
        server.terminate()
        server.wait(20)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_tcp_is_off_unless_configured_then_needs_the_generated_password(
    private_dir: Path, served: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    plain = EmbeddedPostgres(private_dir / "pgsql", private_dir / "run")
    plain.ensure_initialised()
    plain.ensure_tcp_password()
    assert not plain.tcp_password_file.exists()
    served.append(_serve(plain))
    assert not _listening(port) and not _listening(5432)
    stopped = served.pop()
    stopped.terminate()
    stopped.wait(20)

    tcp = EmbeddedPostgres(private_dir / "pgsql", private_dir / "run", tcp_port=port)
    tcp.ensure_tcp_password()
    mode = tcp.tcp_password_file.stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    served.append(_serve(tcp))
    with psycopg.connect(_tcp_dsn(tcp), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user, inet_server_addr()::text").fetchone() == ("ccb", "127.0.0.1/32")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"postgresql://ccb:ccbpass@127.0.0.1:{port}/ccb", connect_timeout=5)
    first_password = tcp.tcp_password_file.read_text()
    tcp.ensure_tcp_password()  # a restart keeps the password
    assert tcp.tcp_password_file.read_text() == first_password


def test_pg_run_takes_the_tcp_port_from_the_launch_environment(
    private_dir: Path, served: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    env = clean_env(private_dir, CCB_PG_TCP_PORT=str(port))
    command = [sys.executable, "-m", "appliance", "pg-run"]
    served.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    layout = StorageLayout(private_dir)
    cluster = EmbeddedPostgres(layout.pgdata, layout.pg_socket_dir, tcp_port=port)
    deadline = time.monotonic() + 30
    while not (cluster.tcp_password_file.exists() and _listening(port)):
        assert served[0].poll() is None and time.monotonic() < deadline, "pg-run did not open the TCP port"
        time.sleep(0.1)
    # the port listens a moment before the server accepts sessions ("the database system is starting up")
    while True:
        try:
            connection = psycopg.connect(_tcp_dsn(cluster), connect_timeout=5)
            break
        except psycopg.OperationalError as exc:
            assert "starting up" in str(exc) and time.monotonic() < deadline, exc
            time.sleep(0.1)
    with connection as conn:
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone() == ("vector",)
