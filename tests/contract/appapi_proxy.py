"""AppAPI's ExApp proxy for tests: GET /index.php/apps/app_api/proxy/<appid>/<path>, as an admin's browser uses it.

Like lib/Controller/ExAppProxyController.php: a path no info.xml route declares is a 404; a declared one is forwarded
with AppAPI's signed headers for the logged-in user, and the answer comes back with its status, type and body; an
ExApp that cannot be reached is an empty 500.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from contract_kit import APP_ID, signed_headers
from local_http_server import LocalHttpServer

INFO_XML = Path(__file__).resolve().parents[2] / "appinfo" / "info.xml"
PROXY_PREFIX = f"/index.php/apps/app_api/proxy/{APP_ID}/"
# what AppAPI sends back of the ExApp's answer (its own headers come from Nextcloud)
FORWARDED_HEADERS = ("content-type", "cache-control", "content-security-policy", "www-authenticate")


def declared_get_routes() -> list[str]:
    """The <url> regexes of info.xml's GET routes."""
    routes = ET.parse(INFO_XML).getroot().findall("external-app/routes/route")
    return [route.findtext("url", "") for route in routes if "GET" in route.findtext("verb", "")]


@contextmanager
def appapi_proxy(
    app_base: str, user: str = "admin", before_answer: Callable[[str], None] | None = None
) -> Iterator[str]:
    """A running proxy to the app at `app_base` for `user` (an admin); yields the proxy's page base URL.

    `before_answer(app path)` runs once the app has answered and before the browser gets that answer."""
    routes = declared_get_routes()
    client = httpx.Client(base_url=app_base, timeout=60)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            other = url.path.removeprefix(PROXY_PREFIX)
            # AppAPI >= 32.0.10 and HaRP match "/" + path
            if not url.path.startswith(PROXY_PREFIX) or not any(re.match(r, "/" + other) for r in routes):
                self.send_error(404)
                return
            try:
                answer = client.get("/" + other, params=url.query or None, headers=signed_headers(user))
            except httpx.TransportError:
                # requestToExApp2 gives an array on an exception, and the controller answers an empty 500
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if before_answer is not None:
                before_answer("/" + other)
            self.send_response(answer.status_code)
            for name in FORWARDED_HEADERS:
                if name in answer.headers:
                    self.send_header(name, answer.headers[name])
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, format: str, *args: object) -> None:
            pass

    try:
        with LocalHttpServer(Handler) as server:
            yield f"{server.base_url}{PROXY_PREFIX}"
    finally:
        client.close()
