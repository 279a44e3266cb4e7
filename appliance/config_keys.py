"""Every config.yaml key with its type, default and help, walked from the typed config (for `settings`)."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from appliance.config import VECTORDB_BACKENDS, AppConfig
from appliance.llm_config import LLM_BACKENDS

# fields filled from the upstream-shaped sections, not written as keys themselves
_DERIVED = {"vectordb_backend", "llm_backend", "pgvector", "llm"}


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(arg) for arg in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return str(annotation)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _walk(model: type[BaseModel], prefix: str, skip: set[str]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        key = f"{prefix}{name}"
        nested = _model_of(info.annotation)
        if nested is not None:
            rows.extend(_walk(nested, key + ".", set()))
            continue
        if info.default_factory is not None:
            default = repr(info.default_factory())  # type: ignore[call-arg]
        elif info.default is PydanticUndefined:
            default = "(required)"
        else:
            default = repr(info.default)
        rows.append(
            {"key": key, "type": _type_name(info.annotation), "default": default, "help": info.description or ""}
        )
    return rows


def describe_config_keys() -> list[dict[str, str]]:
    """Rows in the yaml's own shape: vectordb.<backend>.*, llm.<backend>.* (first key wins), then the rest."""
    rows = _walk(AppConfig, "", _DERIVED)
    for backend, model in VECTORDB_BACKENDS.items():
        rows.extend(_walk(model, f"vectordb.{backend}.", set()))
    for backend, model in LLM_BACKENDS.items():
        rows.extend(_walk(model, f"llm.{backend}.", set()))
    return rows
