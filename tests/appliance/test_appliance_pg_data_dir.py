"""`pg-run` (root) on a data dir the PostgreSQL OS user owns and could have tampered with, or an older image left.

Each test copies one cluster initialised for the module, changes it as an attacker or an upgrade would, starts
`python -m appliance pg-run` as supervisord does (with AppAPI's secrets in its environment) and checks the result.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from appliance_kit import PYTHON, REPO, clean_env, connect_as, root_owned_victim, run_as, untouched

from appliance.os_users import PARSER_USER, POSTGRES_USER, ensure_system_user
from appliance.postgres import EmbeddedPostgres
from appliance.storage import StorageLayout

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: pg-run switches to the PostgreSQL OS user")

SECRETS = {
    "APP_SECRET": "app-secret-9f3c",
    "EXTERNAL_DB": "postgresql://ccb:db-password-77@db.invalid/ccb",
    "CC_EM_APIKEY": "api-key-41d7",
    "NEXTCLOUD_URL": "http://nextcloud.invalid",
}


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    """A storage dir with an initialised cluster, copied by each test (initdb once per module)."""
    root = Path(tempfile.mkdtemp(prefix="ccb-dd-", dir="/tmp"))
    layout = StorageLayout(root / "storage")
    EmbeddedPostgres(layout.pgdata, layout.pg_socket_dir).ensure_initialised()
    yield layout.root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def storage(template: Path, private_dir: Path) -> StorageLayout:
    private_dir.chmod(0o711)  # what pg-run's first start does: the PostgreSQL user may traverse to its dirs
    subprocess.run(["cp", "-a", str(template), str(private_dir / "storage")], check=True)
    return StorageLayout(private_dir / "storage")


class PgRun:
    """`python -m appliance pg-run` as supervisord starts it; stopped with SIGINT (supervisord's stopsignal)."""

    def __init__(self, layout: StorageLayout) -> None:
        self.cluster = EmbeddedPostgres(layout.pgdata, layout.pg_socket_dir)
        self.log_path = layout.root.parent / "pg-run.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "appliance", "pg-run"],
                cwd=REPO,
                env=clean_env(layout.root, **SECRETS),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.cluster.dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                log = self.log_path.read_text(errors="replace")
                assert self.process.poll() is None, f"pg-run exited {self.process.returncode}:\n{log[-3000:]}"
                assert time.monotonic() < deadline, f"PostgreSQL did not start:\n{log[-3000:]}"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(30)


@pytest.fixture
def started() -> Iterator[list[PgRun]]:
    runs: list[PgRun] = []
    yield runs
    for run in runs:
        run.stop()


def _query(cluster: EmbeddedPostgres, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(cluster.dsn, connect_timeout=5, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _plant_link(target: Path, link: Path) -> None:
    """What the PostgreSQL OS user can do in its own data dir: put a link where root will write."""
    result = run_as(POSTGRES_USER.name, "ln", "-sfn", str(target), str(link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.lstat().st_uid == ensure_system_user(POSTGRES_USER).pw_uid


def test_links_planted_in_the_data_dir_do_not_reach_root_files(
    storage: StorageLayout, private_dir: Path, started: list[PgRun]
) -> None:
    victims = [root_owned_victim(private_dir, f"victim{index}") for index in range(4)]
    for victim, name in zip(
        victims, ("ccb_overrides.conf", "ccb_overrides.conf.tmp", "pg_hba.conf", "pg_ident.conf"), strict=True
    ):
        _plant_link(victim, storage.pgdata / name)
    started.append(PgRun(storage))
    started[0].wait_ready()
    assert [victim for victim in victims if not untouched(victim)] == []
    assert _query(started[0].cluster, "SHOW maintenance_work_mem") == [("1GB",)]  # the overrides were installed
    for name in ("ccb_overrides.conf", "pg_hba.conf", "pg_ident.conf"):
        path = storage.pgdata / name
        assert not path.is_symlink() and path.stat().st_uid == ensure_system_user(POSTGRES_USER).pw_uid, name


def test_a_data_dir_owned_by_an_older_images_uid_is_chowned_without_following_links(
    storage: StorageLayout, private_dir: Path, started: list[PgRun]
) -> None:
    old_uid = 45_678  # `useradd` of an older image picked the uid at run time; this image has another
    victim = root_owned_victim(private_dir)
    (storage.pgdata / "old_link").symlink_to(victim)
    for path in (storage.pgdata, storage.pg_socket_dir):
        subprocess.run(["chown", "-R", "--no-dereference", f"{old_uid}:{old_uid}", str(path)], check=True)
    started.append(PgRun(storage))
    started[0].wait_ready()
    user = ensure_system_user(POSTGRES_USER)
    owners = {(path.lstat().st_uid, path.lstat().st_gid) for path in [storage.pgdata, *storage.pgdata.rglob("*")]}
    assert owners == {(user.pw_uid, user.pw_gid)}
    assert untouched(victim)
    assert "changing the owner of everything in it" in started[0].log_path.read_text()


def test_an_old_trust_pg_hba_is_replaced_and_other_os_users_are_refused(
    storage: StorageLayout, started: list[PgRun]
) -> None:
    # what initdb --auth-local=trust wrote for clusters of earlier versions
    (storage.pgdata / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    ensure_system_user(PARSER_USER)
    started.append(PgRun(storage))
    started[0].wait_ready()
    # first wall: the socket's dir is the PostgreSQL user's alone
    closed = connect_as(PARSER_USER.name, started[0].cluster.dsn)
    assert "Permission denied" in closed, closed
    storage.pg_socket_dir.chmod(0o711)  # second wall: reachable now, so the refusals below are PostgreSQL's
    for os_user in (PARSER_USER.name, "nobody"):
        for role in ("ccb", "postgres"):
            dsn = f"postgresql://{role}@/ccb?host={storage.pg_socket_dir}"
            assert f'Peer authentication failed for user "{role}"' in connect_as(os_user, dsn), (os_user, role)
    assert _query(started[0].cluster, "SELECT current_user") == [("ccb",)]  # the appliance's own user still gets in


def test_postgres_runs_without_the_appliances_secrets_in_its_environment(
    storage: StorageLayout, started: list[PgRun]
) -> None:
    started.append(PgRun(storage))
    started[0].wait_ready()
    # postgres overwrites /proc/<pid>/environ with its process title; a program it runs sees the real environment
    superuser = f"postgresql://postgres@/postgres?host={storage.pg_socket_dir}"
    with psycopg.connect(superuser, connect_timeout=5, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE server_env (line text)")
        conn.execute("COPY server_env FROM PROGRAM 'env' WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')")
        names = {str(line).partition("=")[0] for (line,) in conn.execute("SELECT line FROM server_env")}
    assert "PATH" in names
    assert names & set(SECRETS) == set()


def test_a_stop_during_the_first_starts_initdb_ends_quietly_and_the_next_start_makes_the_cluster(
    private_dir: Path, started: list[PgRun]
) -> None:
    layout = StorageLayout(private_dir / "storage")
    layout.ensure()
    private_dir.chmod(0o711)
    first = PgRun(layout)
    staging = layout.pgdata.with_name(layout.pgdata.name + ".initdb")
    deadline = time.monotonic() + 30
    while not staging.exists():  # initdb is building the cluster aside
        assert first.process.poll() is None and time.monotonic() < deadline, first.log_path.read_text()
        time.sleep(0.01)
    first.stop()
    log = first.log_path.read_text(errors="replace")
    assert first.process.returncode == 0, log
    assert "Traceback" not in log and "stopped during the first start's initdb" in log, log
    assert not first.cluster.initialised
    started.append(PgRun(layout))
    started[0].wait_ready()
    assert _query(started[0].cluster, "SELECT extname FROM pg_extension WHERE extname = 'vector'") == [("vector",)]


def test_an_upstream_postgresql_17_cluster_is_kept_aside_and_a_new_one_is_made(
    storage: StorageLayout, started: list[PgRun]
) -> None:
    # upstream Context Chat's embedded cluster (PostgreSQL 17) in the same place; PG_VERSION is what the server checks
    (storage.pgdata / "PG_VERSION").write_text("17\n")
    (storage.pgdata / "upstream_marker").write_text("upstream's data\n")
    started.append(PgRun(storage))
    started[0].wait_ready()
    assert _query(started[0].cluster, "SELECT extname FROM pg_extension WHERE extname = 'vector'") == [("vector",)]
    assert (storage.pgdata / "PG_VERSION").read_text().strip() != "17"
    [kept] = storage.vector_db_dir.glob("pgsql.pg17-*")
    assert (kept / "upstream_marker").read_text() == "upstream's data\n"
    assert f"kept it as {kept}" in started[0].log_path.read_text()


def test_a_cluster_of_a_newer_postgresql_is_refused_and_left_as_it_is(
    storage: StorageLayout, started: list[PgRun]
) -> None:
    (storage.pgdata / "PG_VERSION").write_text("99\n")
    started.append(PgRun(storage))
    assert started[0].process.wait(60) != 0
    assert "holds a PostgreSQL 99 cluster" in started[0].log_path.read_text()
    assert (storage.pgdata / "PG_VERSION").read_text() == "99\n"
    assert list(storage.vector_db_dir.glob("pgsql.pg*")) == []
