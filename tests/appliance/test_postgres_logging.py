"""The embedded PostgreSQL logs slow statements without their bind parameters (document text, questions)."""

from __future__ import annotations

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
