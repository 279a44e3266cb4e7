"""The WHERE fragments every retrieval query shares: a user's access rows and the requested scope, in SQL, with the
values sent as single text parameters."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from psycopg import sql

ScopeType = Literal["provider", "source", "all"]


@dataclass(frozen=True, slots=True)
class Scope:
    """A search restricted to some providers, to some source ids (folders arrive already expanded) or to neither
    ("all"), less the `excluded` source ids (documents Nextcloud no longer shows the user)."""

    kind: ScopeType
    values: tuple[str, ...]
    excluded: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether no document can be in it: a provider or source scope of no values."""
        return self.kind != "all" and not self.values


def excluding(scope: Scope | None, source_ids: Collection[str]) -> Scope | None:
    """`scope` less `source_ids`; the same scope (and so the same SQL) without any."""
    if not source_ids:
        return scope
    base = scope if scope is not None else Scope("all", ())
    return replace(base, excluded=tuple(sorted({*base.excluded, *source_ids})))


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form; works whether or not the connection registered the vector type."""
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def text_array(values: Sequence[str]) -> str:
    """A text[] in PostgreSQL's array syntax, sent as one parameter: psycopg dumps a Python list element by element
    in Python, on the event loop (100 ms for a scope of 20,000 source ids, three times per query)."""
    quoted = ('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values)
    return "{" + ",".join(quoted) + "}"


def _scope_parts(scope: Scope, source_column: str) -> list[sql.Composable]:
    """The scope's WHERE conditions on a row whose source id is `source_column` ("c.source_id", "a.source_id")."""
    source = sql.SQL(source_column)
    parts: list[sql.Composable] = []
    if scope.kind == "provider":
        parts.append(
            sql.SQL(
                "EXISTS (SELECT 1 FROM documents d WHERE d.source_id = {source}"
                " AND d.provider = ANY(%(scope)s::text[]))"
            ).format(source=source)
        )
    elif scope.kind == "source":
        parts.append(sql.SQL("{source} = ANY(%(scope)s::text[])").format(source=source))
    if scope.excluded:
        parts.append(sql.SQL("NOT ({source} = ANY(%(excluded)s::text[]))").format(source=source))
    return parts


def chunk_filter(user_id: str, scope: Scope | None) -> tuple[sql.Composable, dict[str, Any]]:
    """The WHERE fragment restricting chunk `c` to the user's access rows and the scope, as array parameters."""
    readable = sql.SQL("EXISTS (SELECT 1 FROM access a WHERE a.user_id = %(user_id)s AND a.source_id = c.source_id)")
    params: dict[str, Any] = {"user_id": user_id}
    if scope is None:
        return readable, params
    if scope.kind != "all":
        params["scope"] = text_array(scope.values)
    if scope.excluded:
        params["excluded"] = text_array(scope.excluded)
    return sql.SQL(" AND ").join([readable, *_scope_parts(scope, "c.source_id")]), params


def access_filter(scope: Scope | None) -> sql.Composable:
    """The WHERE fragment restricting access row `a` to the user and the scope (parameters as chunk_filter's)."""
    own = sql.SQL("a.user_id = %(user_id)s")
    if scope is None:
        return own
    return sql.SQL(" AND ").join([own, *_scope_parts(scope, "a.source_id")])
