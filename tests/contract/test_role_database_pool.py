"""The database pool a replica opens follows its APP_ROLE: vectordb.pgvector.roles.<role>, null keys from the base."""

from __future__ import annotations

import dataclasses
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from contract_kit import contract_config, make_settings, running_app

from appliance.app_role import AppRole, app_role
from appliance.config import parse_config
from appliance.errors import ConfigError
from quart_app import create_app
from quart_app.engine import ENGINE_EXTENSION, Engine
from quart_app.store import DatabaseUnavailableError
from quart_app.store.claim_store import CLAIM_APPLICATION

# the base section: a normal replica gets these; roles inherit the acquire timeout (short, so the test is quick)
BASE = {"pool_max": 8, "statement_timeout_s": 60, "acquire_timeout_s": 0.5}


@pytest.mark.parametrize(
    ("role", "pool_max", "statement_timeout", "claim_connections"),
    [("", 8, "1min", 1), ("embedding-worker", 4, "2min", 0), ("requestproc", 16, "1min", 1)],
)
async def test_a_replica_opens_the_pool_of_its_role(
    tmp_path: Path,
    fresh_dsn: str,
    embedder_url: str,
    role: str,
    pool_max: int,
    statement_timeout: str,
    claim_connections: int,
) -> None:
    settings = make_settings(tmp_path / "storage", fresh_dsn, contract_config(embedder_url, pgvector=BASE))
    # the replica's role as AppSettings.from_env reads it from APP_ROLE
    app = create_app(dataclasses.replace(settings, role=app_role({"APP_ROLE": role})))
    async with running_app(app):
        engine: Engine = app.extensions[ENGINE_EXTENSION]
        async with engine.db.connection() as conn:
            cur = await conn.execute("SHOW statement_timeout")
            assert await cur.fetchone() == (statement_timeout,)
            # a role that never claims a source keeps no claim connection open
            cur = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
                (CLAIM_APPLICATION,),
            )
            assert await cur.fetchone() == (claim_connections,)
        held = 0
        async with AsyncExitStack() as stack:
            with pytest.raises(DatabaseUnavailableError) as exhausted:
                for _ in range(pool_max + 1):  # the app's own loops may hold one or two of them meanwhile
                    await stack.enter_async_context(engine.db.connection())
                    held += 1
        assert 0 < held <= pool_max
        assert str(exhausted.value) == (
            f"all {pool_max} database connections stayed busy for 0.5 s; retry later or raise pgvector.pool_max"
        )


def test_role_sections_override_and_inherit_and_bad_sizes_name_the_role() -> None:
    config = parse_config(
        {"vectordb": {"pgvector": {"lock_timeout_s": 5, "roles": {"indexing": {"pool_max": 3, "lock_timeout_s": 0}}}}},
        environ={},
    )
    indexing = config.pgvector.pool_for(AppRole.INDEXING)
    assert (indexing.pool_max, indexing.statement_timeout_s, indexing.lock_timeout_s) == (3, 300.0, 0.0)
    updates = config.pgvector.pool_for(AppRole.UPDATESPROC)
    assert (updates.pool_max, updates.statement_timeout_s, updates.lock_timeout_s) == (4, 300.0, 5.0)
    big_base = parse_config({"vectordb": {"pgvector": {"pool_min": 6, "pool_max": 20}}}, environ={})
    assert big_base.pgvector.pool_for(AppRole.NORMAL).pool_min == 6
    assert big_base.pgvector.pool_for(AppRole.EMBEDDING_WORKER).pool_min == 4  # kept within the role's pool
    with pytest.raises(ConfigError) as raised:
        parse_config({"vectordb": {"pgvector": {"roles": {"embedding_worker": {"pool_min": 6}}}}}, "c.yaml", environ={})
    assert str(raised.value) == (
        "c.yaml: 'vectordb.pgvector': Value error, pool_min 6 is above pool_max 4 for APP_ROLE=embedding-worker"
        " (roles.embedding_worker); lower pool_min or raise pool_max"
    )
