"""The embedded PostgreSQL logs slow statements without their bind parameters (document text, questions)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import psycopg

from appliance.postgres import EmbeddedPostgres


def test_slow_statement_log_lines_carry_no_parameters(pg_cluster: EmbeddedPostgres) -> None:
    marker = f"secret-chunk-text-{uuid.uuid4().hex}"
    log_path = pg_cluster.pgdata.parent / "postgres.log"
    with psycopg.connect(f"postgresql://postgres@/postgres?host={pg_cluster.socket_dir}", autocommit=True) as conn:
        settings = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name LIKE 'log_parameter_max_length%' ORDER BY name"
        ).fetchall()
        assert settings == [("log_parameter_max_length", "0"), ("log_parameter_max_length_on_error", "0")]
        conn.execute("SET log_min_duration_statement = 0")  # every statement counts as slow now
        conn.execute("SELECT length(%s::text) AS slow_statement_probe", (marker,))
    deadline = time.monotonic() + 10
    while "slow_statement_probe" not in log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the statement was not logged"
        time.sleep(0.05)
    assert marker not in log_path.read_text(errors="replace")


def test_an_error_is_one_json_record_with_its_detail_and_statement(pg_cluster: EmbeddedPostgres) -> None:
    table = f"log_probe_{uuid.uuid4().hex[:8]}"
    log_path = pg_cluster.pgdata.parent / "postgres.log"
    with psycopg.connect(f"postgresql://postgres@/postgres?host={pg_cluster.socket_dir}", autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            conn.execute(f"INSERT INTO {table} VALUES (%s)", (1,))
        conn.execute(f"DROP TABLE {table}")

    def record() -> dict[str, object] | None:
        for line in log_path.read_text(errors="replace").splitlines():
            parsed = json.loads(line)
            if parsed.get("severity") == "ERROR" and table in parsed.get("statement", ""):
                return dict(parsed)
        return None

    deadline = time.monotonic() + 10
    while (found := record()) is None:
        assert time.monotonic() < deadline, "the error was not logged"
        time.sleep(0.05)
    assert found["level"] == "error" and found["program"] == "postgres"
    assert found["detail"] == "Key (id)=(1) already exists."
    assert found["statement"] == f"INSERT INTO {table} VALUES ($1)"
