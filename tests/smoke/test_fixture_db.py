import psycopg


def test_fresh_database_has_pgvector(fresh_dsn: str) -> None:
    with psycopg.connect(fresh_dsn) as conn:
        row = conn.execute("SELECT '[1,2,3]'::vector <=> '[1,2,3]'::vector, current_user").fetchone()
    assert row == (0.0, "ccb")
