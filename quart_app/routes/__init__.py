"""The contract's HTTP routes, one blueprint per concern."""

from __future__ import annotations

from quart import Quart

from quart_app.routes import access, admin, delete, ingest, query, status_page, trigger


def register_blueprints(app: Quart) -> None:
    for module in (ingest, query, access, delete, admin, status_page, trigger):
        app.register_blueprint(module.blueprint)
