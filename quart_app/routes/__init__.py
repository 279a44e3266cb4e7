"""The contract's HTTP routes, one blueprint per concern; a role without a blueprint's duty answers it with 404."""

from __future__ import annotations

from collections.abc import Mapping

from quart import Quart, Response, request

from appliance.app_role import AppRole, Duty, has_duty, replica_roles
from quart_app.http_errors import json_message
from quart_app.lifecycle import lifecycle
from quart_app.routes import access, admin, delete, ingest, query, status_page, trigger

# blueprint -> the duty it needs; the lifecycle, admin and status page routes answer in every role
BLUEPRINT_DUTIES: Mapping[str, Duty] = {
    ingest.blueprint.name: Duty.PUSH_ROUTES,
    query.blueprint.name: Duty.PUSH_ROUTES,
    access.blueprint.name: Duty.PUSH_ROUTES,
    delete.blueprint.name: Duty.PUSH_ROUTES,
    trigger.blueprint.name: Duty.TASKS,
}


def register_blueprints(app: Quart) -> None:
    for module in (ingest, query, access, delete, admin, status_page, trigger):
        app.register_blueprint(module.blueprint)
    app.before_request(refuse_other_roles_routes)


def not_served_message(method: str, path: str, role: AppRole, duty: Duty) -> str:
    serving = " or ".join(replica_roles(duty))
    return (
        f"{method} {path} is not served by this replica (APP_ROLE={role}, which does not run {duty}); "
        f"send it to a replica with APP_ROLE={serving} or normal"
    )


async def refuse_other_roles_routes() -> Response | None:
    """Before the view (and its enabled guard): 404 naming the role that serves the route, when this one does not."""
    duty = BLUEPRINT_DUTIES.get(request.blueprint or "")
    role = lifecycle().settings.role
    if duty is None or has_duty(role, duty):
        return None
    return json_message(not_served_message(request.method, request.path, role, duty), 404)
