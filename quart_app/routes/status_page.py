"""The admin status page: GET /status/page.html, its script, styles and chart library, and GET /status/history.

Reached through AppAPI's proxy (info.xml routes, ADMIN) or directly with the app secret as an HTTP Basic password
(quart_app.auth). Every URL inside the page is relative, so it works under /apps/app_api/proxy/<appid>/ too; the page
ends in .html because AppAPI adds Nextcloud's CSP nonce to the <script> tags of .html pages only.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from importlib import resources

from quart import Blueprint, Response

from quart_app.engine import engine
from quart_app.http_errors import json_message
from quart_app.lifecycle import lifecycle
from quart_app.services.status_history import history

blueprint = Blueprint("status_page", __name__)

ASSETS = {
    "page.html": "text/html",
    "page.js": "text/javascript",
    "page.css": "text/css",
    # uPlot 1.6.32 (MIT, uPlot.LICENSE), the dist files of `npm pack uplot@1.6.32`
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
}
HISTORY_PATH = "/status/history"
# what the page loads: these also accept the app secret as an HTTP Basic password (a browser without Nextcloud)
PAGE_PATHS = frozenset({"/status", HISTORY_PATH, *(f"/status/{name}" for name in ASSETS)})
# served directly the page runs only its own files; through AppAPI, Nextcloud's policy applies as well
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@functools.cache
def _asset(name: str) -> bytes:
    return (resources.files("quart_app") / "static" / "status" / name).read_bytes()


def _asset_view(name: str, mimetype: str) -> Callable[[], Awaitable[Response]]:
    async def view() -> Response:
        response = Response(_asset(name), mimetype=mimetype)
        response.headers.update(PAGE_SECURITY_HEADERS)
        # small files: the browser (and AppAPI's proxy, which caches for an hour otherwise) asks again each time
        response.headers["Cache-Control"] = "no-cache"
        return response

    return view


for _name, _mimetype in ASSETS.items():
    blueprint.add_url_rule(
        f"/status/{_name}", f"asset_{_name.replace('.', '_')}", _asset_view(_name, _mimetype), methods=["GET"]
    )


@blueprint.get(HISTORY_PATH)
async def status_history() -> Response:
    report = await history(engine().db, lifecycle().settings.config.status_history)
    return json_message(report, headers={"Cache-Control": "no-store"})
