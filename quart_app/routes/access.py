"""POST /updateAccessDeclarative, /updateAccess and /updateAccessProvider (4.0+)."""

from __future__ import annotations

from quart import Blueprint, Response

from quart_app.engine import engine
from quart_app.http_errors import ContractError, json_message
from quart_app.lifecycle import require_enabled
from quart_app.services import access
from quart_app.source_fields import (
    MAX_PROVIDER_ID_CHARS,
    MAX_SOURCE_ID_CHARS,
    MAX_USER_ID_CHARS,
    is_valid_provider_id,
    is_valid_source_id,
    length_problem,
    shown,
)
from quart_app.wire_models import (
    UpdateAccessDeclarativeRequest,
    UpdateAccessProviderRequest,
    UpdateAccessRequest,
    parse_body,
)

blueprint = Blueprint("access", __name__)

ACCESS_UPDATED = "Access updated"


def _check_users(user_ids: list[str]) -> list[str]:
    users = [user for user in user_ids if user.strip()]
    if not users:
        raise ContractError("Empty list of user ids", 400)
    for user in users:
        # too long for PostgreSQL's index: it failed in the database (500) and PHP retried it
        if problem := length_problem(user, MAX_USER_ID_CHARS):
            raise ContractError(f"Invalid user id: userIds holds {shown(user)}, which {problem}", 400)
    return users


def _check_source(source_id: str) -> None:
    if problem := length_problem(source_id, MAX_SOURCE_ID_CHARS):
        raise ContractError(f"Invalid source id: sourceId {problem}", 400)
    if not is_valid_source_id(source_id):
        raise ContractError("Invalid source id", 400)


@blueprint.post("/updateAccessDeclarative")
@require_enabled
async def update_access_declarative() -> Response:
    body = await parse_body(UpdateAccessDeclarativeRequest)
    users = _check_users(body.userIds)
    _check_source(body.sourceId)
    opened = engine()
    await access.update_access_declarative(opened.db, opened.order, users, body.sourceId)
    return json_message(ACCESS_UPDATED)


@blueprint.post("/updateAccess")
@require_enabled
async def update_access() -> Response:
    body = await parse_body(UpdateAccessRequest)
    users = _check_users(body.userIds)
    _check_source(body.sourceId)
    opened = engine()
    await access.update_access(opened.db, opened.order, body.op, users, body.sourceId)
    return json_message(ACCESS_UPDATED)


@blueprint.post("/updateAccessProvider")
@require_enabled
async def update_access_provider() -> Response:
    body = await parse_body(UpdateAccessProviderRequest)
    users = _check_users(body.userIds)
    if problem := length_problem(body.providerId, MAX_PROVIDER_ID_CHARS):
        raise ContractError(f"Invalid provider id: providerId {problem}", 400)
    if not is_valid_provider_id(body.providerId):
        raise ContractError("Invalid provider id", 400)
    # upstream 4.0-5.3 called update_access(providerId as a source id) here (a no-op); we do what PHP meant
    opened = engine()
    await access.update_access_provider(opened.db, opened.order, body.op, users, body.providerId)
    return json_message(ACCESS_UPDATED)
