"""First start of the embedded cluster: built aside and renamed into place, so an interrupted initdb is harmless."""

from __future__ import annotations

from pathlib import Path

from appliance.postgres import EmbeddedPostgres


def test_leftover_of_an_interrupted_initdb_is_removed(private_dir: Path) -> None:
    cluster = EmbeddedPostgres(private_dir / "vector_db_data" / "pgsql", private_dir / "run")
    staging = private_dir / "vector_db_data" / "pgsql.initdb"
    staging.mkdir(parents=True)
    (staging / "PG_VERSION").write_text("18\n")  # what a killed initdb leaves behind
    assert cluster.ensure_initialised() is True
    assert not staging.exists()
    assert (cluster.pgdata / "PG_VERSION").read_text().strip() == "18"
    assert (cluster.pgdata / "base").is_dir()
    assert cluster.ensure_initialised() is False  # second call: nothing to do
