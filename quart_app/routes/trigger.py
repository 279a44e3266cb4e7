"""POST /trigger?providerId=…: AppAPI says a task was scheduled for one of our TaskProcessing providers."""

from __future__ import annotations

from quart import Blueprint, Response, current_app

from quart_app.engine import ENGINE_EXTENSION, Engine
from quart_app.http_errors import json_message

blueprint = Blueprint("trigger", __name__)


@blueprint.post("/trigger")
async def trigger() -> Response:
    # cheap and always {}: before the engine opens the poller's first poll finds the task anyway
    opened: Engine | None = current_app.extensions.get(ENGINE_EXTENSION)
    if opened is not None and opened.pull is not None and opened.pull.tasks is not None:
        opened.pull.tasks.trigger()
    return json_message({})
