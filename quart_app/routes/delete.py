"""Deletes: /deleteSources (4.0+ and beta shapes), /deleteProvider, /deleteUser and the beta provider deletes."""

from __future__ import annotations

import json

from quart import Blueprint, Response

from quart_app.engine import engine
from quart_app.http_errors import ContractError, json_message
from quart_app.lifecycle import require_enabled
from quart_app.services import deletion
from quart_app.source_fields import BARE_PROVIDER_ID_RE, is_valid_provider_id
from quart_app.wire_models import (
    BetaDeleteByProviderForAllUsersRequest,
    BetaDeleteByProviderRequest,
    BetaDeleteSourcesRequest,
    DeleteProviderRequest,
    DeleteSourcesRequest,
    DeleteUserRequest,
    parse_body,
    read_json_body,
    validate_body,
)

blueprint = Blueprint("delete", __name__)

SOURCES_DELETED = "All valid sources deleted"
NO_SOURCES = "No sources provided"
INVALID_PROVIDER_KEY = "Invalid provider key provided"


def _is_beta_shape(raw: bytes) -> bool:
    """PHP 4.0.0-beta2/3 send {userId, sourceNames}; 4.0+ send {sourceIds}."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # deeply nested arrays exhaust the stdlib parser's recursion
        return False
    return isinstance(data, dict) and "sourceIds" not in data and ("sourceNames" in data or "userId" in data)


def _non_empty(ids: list[str]) -> list[str]:
    kept = [source_id for source_id in ids if source_id.strip()]
    if not kept:
        raise ContractError(NO_SOURCES, 400)
    return kept


def _check_provider(key: str) -> None:
    if not is_valid_provider_id(key):
        raise ContractError(INVALID_PROVIDER_KEY, 400)


@blueprint.post("/deleteSources")
@require_enabled
async def delete_sources() -> Response:
    raw = await read_json_body()
    opened = engine()
    if _is_beta_shape(raw):
        beta = validate_body(BetaDeleteSourcesRequest, raw)
        await deletion.delete_user_sources(opened.db, opened.order, beta.userId, _non_empty(beta.sourceNames))
    else:
        body = validate_body(DeleteSourcesRequest, raw)
        await deletion.delete_sources(opened.db, opened.order, _non_empty(body.sourceIds))
    return json_message(SOURCES_DELETED)


@blueprint.post("/deleteProvider")
@require_enabled
async def delete_provider() -> Response:
    body = await parse_body(DeleteProviderRequest)
    # an app disable (PHP app < 5.5) names the provider without its app; refused, ActionJob dropped it for good
    if not BARE_PROVIDER_ID_RE.match(body.providerKey):
        _check_provider(body.providerKey)
    opened = engine()
    await deletion.delete_named_provider(opened.db, opened.order, body.providerKey)
    return json_message(SOURCES_DELETED)


@blueprint.post("/deleteUser")
@require_enabled
async def delete_user() -> Response:
    body = await parse_body(DeleteUserRequest)
    if not body.userId.strip():
        raise ContractError("Invalid userId provided", 400)
    opened = engine()
    await deletion.delete_user(opened.db, opened.order, body.userId)
    return json_message("User deleted")


@blueprint.post("/deleteSourcesByProvider")
@require_enabled
async def delete_sources_by_provider() -> Response:
    body = await parse_body(BetaDeleteByProviderRequest)
    _check_provider(body.providerKey)
    opened = engine()
    await deletion.delete_user_provider(opened.db, opened.order, body.userId, body.providerKey)
    return json_message(SOURCES_DELETED)


@blueprint.post("/deleteSourcesByProviderForAllUsers")
@require_enabled
async def delete_sources_by_provider_for_all_users() -> Response:
    body = await parse_body(BetaDeleteByProviderForAllUsersRequest)
    _check_provider(body.providerKey)
    opened = engine()
    await deletion.delete_provider_for_all_users(opened.db, opened.order, body.providerKey)
    return json_message(SOURCES_DELETED)
