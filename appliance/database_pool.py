"""The `vectordb.pgvector` section: connection, pool sizes and timeouts, with per-APP_ROLE overrides.

Each role's replica opens its own pool against the same (often external) PostgreSQL, and the roles need different
pools: a requestproc serves many queries at once, an embedding worker needs a few connections for its loops, and
the bulk writers (indexing, updatesproc) get longer statement timeouts. `normal` (the whole appliance) uses the
section's own values; a role section's unset key (null) falls back to them too.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, model_validator

from appliance.app_role import AppRole
from appliance.config_section import ConfigSection

_NONE_MEANS = "; null = the vectordb.pgvector value"


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """The pool one process opens: sizes and timeouts resolved for its role."""

    role: AppRole
    pool_min: int
    pool_max: int
    statement_timeout_s: float
    lock_timeout_s: float
    acquire_timeout_s: float


class RolePool(ConfigSection):
    """Pool overrides for one APP_ROLE; every key left null takes the vectordb.pgvector value."""

    pool_min: int | None = Field(None, ge=1, description="connections kept open" + _NONE_MEANS)
    pool_max: int | None = Field(None, ge=1, description="most connections open at once" + _NONE_MEANS)
    statement_timeout_s: float | None = Field(
        None, ge=0, description="a query running longer is cancelled (0 = no limit)" + _NONE_MEANS
    )
    lock_timeout_s: float | None = Field(
        None, ge=0, description="a statement waiting longer for a lock fails (0 = no limit)" + _NONE_MEANS
    )
    acquire_timeout_s: float | None = Field(
        None, gt=0, description="seconds a request waits for a database connection" + _NONE_MEANS
    )


class IndexingPool(RolePool):
    pool_max: int | None = Field(
        6, ge=1, description="APP_ROLE=indexing: parse workers writing documents and chunks" + _NONE_MEANS
    )
    statement_timeout_s: float | None = Field(
        300.0, ge=0, description="APP_ROLE=indexing: bulk writer, so a longer limit (0 = no limit)" + _NONE_MEANS
    )


class UpdatesprocPool(RolePool):
    pool_max: int | None = Field(
        4, ge=1, description="APP_ROLE=updatesproc: one action batch at a time needs few connections" + _NONE_MEANS
    )
    statement_timeout_s: float | None = Field(
        300.0, ge=0, description="APP_ROLE=updatesproc: deletes and access changes over many rows" + _NONE_MEANS
    )


class RequestprocPool(RolePool):
    pool_max: int | None = Field(
        16, ge=1, description="APP_ROLE=requestproc: queries, chat tasks and push routes at once" + _NONE_MEANS
    )


class EmbeddingWorkerPool(RolePool):
    pool_max: int | None = Field(
        4,
        ge=1,
        description="APP_ROLE=embedding-worker: a claim and a lease renewal per worker loop need few" + _NONE_MEANS,
    )
    statement_timeout_s: float | None = Field(
        120.0, ge=0, description="APP_ROLE=embedding-worker: claims and vector writes of large batches" + _NONE_MEANS
    )


class RolePools(ConfigSection):
    """One section per role besides `normal`, which uses vectordb.pgvector itself."""

    indexing: IndexingPool = Field(default_factory=IndexingPool)
    updatesproc: UpdatesprocPool = Field(default_factory=UpdatesprocPool)
    requestproc: RequestprocPool = Field(default_factory=RequestprocPool)
    embedding_worker: EmbeddingWorkerPool = Field(default_factory=EmbeddingWorkerPool)

    def of(self, role: AppRole) -> RolePool | None:
        """The section of `role`; None for `normal`."""
        sections: dict[AppRole, RolePool] = {
            AppRole.INDEXING: self.indexing,
            AppRole.UPDATESPROC: self.updatesproc,
            AppRole.REQUESTPROC: self.requestproc,
            AppRole.EMBEDDING_WORKER: self.embedding_worker,
        }
        return sections.get(role)


class PgvectorConfig(ConfigSection):
    connection: str | None = Field(
        None, description="postgresql:// URL of the database; EXTERNAL_DB, when set, wins over it"
    )
    pool_min: int = Field(1, ge=1, description="connections kept open")
    pool_max: int = Field(8, ge=1, description="most connections open at once")
    connect_timeout_s: float = Field(30.0, gt=0, description="seconds to wait for the database at start-up")
    statement_timeout_s: float = Field(
        60.0, ge=0, description="a query running longer is cancelled (0 = no limit); bulk writes and deletes are exempt"
    )
    lock_timeout_s: float = Field(30.0, ge=0, description="a statement waiting longer for a lock fails (0 = no limit)")
    acquire_timeout_s: float = Field(
        30.0, gt=0, description="seconds a request waits for a database connection before answering 503 + cc-retry"
    )
    embedded_tcp_port: int | None = Field(
        None, ge=1, le=65535, description="embedded PostgreSQL also listens on 127.0.0.1:PORT (password auth)"
    )
    roles: RolePools = Field(default_factory=RolePools)

    def pool_for(self, role: AppRole) -> PoolSettings:
        """The pool of a process with this APP_ROLE: the role's section, its null keys from this section."""
        section = self.roles.of(role) or RolePool()
        pool_max = section.pool_max or self.pool_max
        return PoolSettings(
            role=role,
            # the base pool_min never exceeds a role's smaller pool; a role's own pool_min is checked instead
            pool_min=section.pool_min or min(self.pool_min, pool_max),
            pool_max=pool_max,
            statement_timeout_s=_pick(section.statement_timeout_s, self.statement_timeout_s),
            lock_timeout_s=_pick(section.lock_timeout_s, self.lock_timeout_s),
            acquire_timeout_s=_pick(section.acquire_timeout_s, self.acquire_timeout_s),
        )

    @model_validator(mode="after")
    def _min_within_max(self) -> PgvectorConfig:
        for role in AppRole:
            pool = self.pool_for(role)
            if pool.pool_min > pool.pool_max:
                where = "" if role is AppRole.NORMAL else f" for APP_ROLE={role.value} (roles.{role.name.lower()})"
                raise ValueError(
                    f"pool_min {pool.pool_min} is above pool_max {pool.pool_max}{where}; lower pool_min or raise"
                    " pool_max"
                )
        return self


def _pick(override: float | None, base: float) -> float:
    """The role's value when set (0 is a value: no limit), else the section's."""
    return base if override is None else override
