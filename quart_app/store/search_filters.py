"""The WHERE fragments every retrieval query shares: a user's access rows and the requested scope, in SQL, with the
values sent as single text parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import sql

ScopeType = Literal["provider", "source"]


@dataclass(frozen=True, slots=True)
class Scope:
    """A search restricted to some providers or to some source ids (folders arrive already expanded)."""

    kind: ScopeType
    values: tuple[str, ...]


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form; works whether or not the connection registered the vector type."""
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def text_array(values: Sequence[str]) -> str:
    """A text[] in PostgreSQL's array syntax, sent as one parameter: psycopg dumps a Python list element by element
    in Python, on the event loop (100 ms for a scope of 20,000 source ids, three times per query)."""
    quoted = ('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values)
    return "{" + ",".join(quoted) + "}"


def chunk_filter(user_id: str, scope: Scope | None) -> tuple[sql.Composable, dict[str, Any]]:
    """The WHERE fragment restricting chunk `c` to the user's access rows and the scope, as array parameters."""
    parts: list[sql.Composable] = [
        sql.SQL("EXISTS (SELECT 1 FROM access a WHERE a.user_id = %(user_id)s AND a.source_id = c.source_id)")
    ]
    params: dict[str, Any] = {"user_id": user_id}
    if scope is not None and scope.kind == "provider":
        parts.append(
            sql.SQL(
                "EXISTS (SELECT 1 FROM documents d WHERE d.source_id = c.source_id"
                " AND d.provider = ANY(%(scope)s::text[]))"
            )
        )
        params["scope"] = text_array(scope.values)
    elif scope is not None:
        parts.append(sql.SQL("c.source_id = ANY(%(scope)s::text[])"))
        params["scope"] = text_array(scope.values)
    return sql.SQL(" AND ").join(parts), params


def access_filter(scope: Scope | None) -> sql.Composable:
    """The WHERE fragment restricting access row `a` to the user and the scope (parameters as chunk_filter's)."""
    if scope is not None and scope.kind == "provider":
        return sql.SQL(
            "a.user_id = %(user_id)s AND EXISTS (SELECT 1 FROM documents d WHERE d.source_id = a.source_id"
            " AND d.provider = ANY(%(scope)s::text[]))"
        )
    if scope is not None:
        return sql.SQL("a.user_id = %(user_id)s AND a.source_id = ANY(%(scope)s::text[])")
    return sql.SQL("a.user_id = %(user_id)s")
