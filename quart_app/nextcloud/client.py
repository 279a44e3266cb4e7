"""NextcloudClient: AppAPI-signed calls to Nextcloud over one httpx connection pool.

Why httpx and not nc_py_api: the user is a per-call argument here (nc_py_api keeps it as client state, so every
TaskProcessing call needed its own client), errors arrive as classes by status instead of being swallowed
(nc_py_api's `next_task` and `report_result` suppress them), downloads stream to disk with identity encoding and a
size bound, and the client has a public `aclose()` (nc_py_api needed a private session hack to free its sockets).
"""

from __future__ import annotations

import base64
import json as jsonlib
import logging
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree

import httpx

from appliance.url_redaction import redacted_url
from quart_app.nextcloud.errors import (
    NextcloudAuthError,
    NextcloudClosedError,
    NextcloudError,
    NextcloudHomeNotSetUpError,
    NextcloudNotConfiguredError,
    NextcloudNotFoundError,
    NextcloudRateLimitedError,
    NextcloudRequestError,
    NextcloudServerError,
    NextcloudTimeoutError,
    NextcloudUnreachableError,
)
from quart_app.services.source_spool import SourceSpool, SpooledFile

log = logging.getLogger(__name__)

# OCS answers "ok" with statuscode 100 (v1) or 200 (v2)
OCS_OK = frozenset({100, 200})
ERROR_BODY_BYTES = 4096
_SABRE = "{http://sabredav.org/ns}"


class NextcloudClient:
    """One per app; `ocs()` returns the OCS `data`, `download()` streams a file into the spool."""

    def __init__(
        self,
        base_url: str | None,
        *,
        app_id: str,
        app_version: str,
        app_secret: str,
        aa_version: str | None = None,
        verify_ssl: bool = True,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url:
            raise NextcloudNotConfiguredError(
                "NEXTCLOUD_URL is not set, so Nextcloud cannot be called; AppAPI sets it when it deploys the ExApp"
                " (for a manual start, export NEXTCLOUD_URL=https://your.nextcloud)"
            )
        self.base_url = nextcloud_base_url(base_url)
        # messages and logs name Nextcloud without a user:password@ a reverse proxy may need
        self.shown_url = redacted_url(self.base_url)
        self._app_id = app_id
        self._secret = app_secret
        self._headers = {
            "EX-APP-ID": app_id,
            "EX-APP-VERSION": app_version or "1.0.0",
            "AA-VERSION": aa_version or "2.2.0",
            "OCS-APIRequest": "true",
            "User-Agent": f"ExApp/{app_id}/{app_version} (context-chat-backend-appliance)",
        }
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            verify=verify_ssl,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            transport=transport,
            follow_redirects=True,
        )
        self._closed = False

    def _signed(self, user: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{self._secret}".encode()).decode()
        return {**self._headers, "AUTHORIZATION-APP-API": token, **(extra or {})}

    def _check_open(self) -> None:
        if self._closed:
            raise NextcloudClosedError("the Nextcloud client was closed; the app is shutting down")

    async def ocs(
        self,
        method: str,
        path: str,
        *,
        user: str = "",
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Call an OCS route as `user` (empty = the app itself); the envelope's `data`, or None for HTTP 204."""
        self._check_open()
        query = {**(params or {}), "format": "json"}
        headers = self._signed(user, {"Accept": "application/json"})
        timeout = httpx.USE_CLIENT_DEFAULT if timeout_s is None else httpx.Timeout(timeout_s)
        try:
            response = await self._http.request(method, path, params=query, json=json, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            raise NextcloudTimeoutError(f"{method} {path}: Nextcloud did not answer in time") from None
        except httpx.TransportError as exc:
            raise NextcloudUnreachableError(f"{method} {path}: {self._unreachable(exc)}") from None
        if response.status_code == 204:
            return None
        payload = _json_or_none(response.content)
        meta = payload.get("ocs", {}).get("meta", {}) if isinstance(payload, dict) else {}
        if response.is_error:
            raise error_for_status(method, path, response.status_code, _message(payload, meta), response.headers)
        if not isinstance(payload, dict) or "ocs" not in payload:
            raise NextcloudRequestError(f"{method} {path}: the answer is not an OCS envelope", response.status_code)
        statuscode = meta.get("statuscode")
        if isinstance(statuscode, int) and statuscode not in OCS_OK:
            # OCS v1 answers failures with HTTP 200 and the code in the envelope
            raise error_for_status(method, path, statuscode, _message(payload, meta), response.headers)
        return payload["ocs"].get("data")

    async def dav(
        self,
        method: str,
        path: str,
        *,
        user: str,
        body: bytes,
        timeout_s: float | None = None,
        depth: str | None = None,
    ) -> bytes:
        """A WebDAV request (SEARCH, PROPFIND with its `depth`) as `user` with an XML body; the multistatus answer's
        bytes."""
        self._check_open()
        extra = {"Content-Type": "application/xml; charset=utf-8", **({"Depth": depth} if depth is not None else {})}
        headers = self._signed(user, extra)
        timeout = httpx.USE_CLIENT_DEFAULT if timeout_s is None else httpx.Timeout(timeout_s)
        try:
            response = await self._http.request(method, path, content=body, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            raise NextcloudTimeoutError(f"{method} {path}: Nextcloud did not answer in time") from None
        except httpx.TransportError as exc:
            raise NextcloudUnreachableError(f"{method} {path}: {self._unreachable(exc)}") from None
        if response.status_code == 401:
            # AppAPI's WebDAV auth also refuses a user Nextcloud does not know, with the same 401 as a wrong secret
            raise NextcloudAuthError(
                f"{method} {path}: Nextcloud answered 401: user {user!r} is not a Nextcloud user, or AppAPI did not"
                " accept APP_ID/APP_SECRET (re-register the ExApp or check its secret)",
                401,
            )
        if response.is_error:
            if _home_not_set_up(response.content, user):
                raise NextcloudHomeNotSetUpError(
                    f"{method} {path}: Nextcloud answered {response.status_code}: it has not set up the home folder of"
                    f" user {user!r} yet (they never logged in)",
                    response.status_code,
                )
            # Sabre's error body is XML (its s:message may name a path): only the status is kept
            raise error_for_status(method, path, response.status_code, "", response.headers)
        return response.content

    async def download(
        self,
        path: str,
        spool: SourceSpool,
        *,
        name: str,
        user: str = "",
        params: Mapping[str, str | int] | None = None,
    ) -> SpooledFile:
        """Stream a raw (non-OCS) response body into the spool, bounded by the spool's size limit while it arrives."""
        self._check_open()
        # identity: PHP streams the file as is; should a proxy compress anyway, aiter_bytes() decodes it
        headers = self._signed(user, {"Accept": "application/json", "Accept-Encoding": "identity"})
        try:
            async with self._http.stream(
                "GET", path, params={**(params or {}), "format": "json"}, headers=headers
            ) as response:
                if response.is_error:
                    body = await _read_some(response)
                    payload = _json_or_none(body)
                    meta = payload.get("ocs", {}).get("meta", {}) if isinstance(payload, dict) else {}
                    raise error_for_status("GET", path, response.status_code, _message(payload, meta), response.headers)
                return await spool.spool(name, response.aiter_bytes())
        except httpx.TimeoutException:
            raise NextcloudTimeoutError(f"GET {path}: Nextcloud did not send the file in time") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise NextcloudUnreachableError(
                f"GET {path}: the download broke off ({type(exc).__name__}); it is retried"
            ) from None

    def _unreachable(self, exc: httpx.TransportError) -> str:
        """Why Nextcloud could not be reached, and what to do; a certificate we do not trust has its own fix."""
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            reason = str(exc).split("certificate verify failed:", 1)[-1].split("(_ssl.c", 1)[0].strip()
            return (
                f"Nextcloud's TLS certificate at {self.shown_url} is not trusted ({reason}); AppAPI installs"
                " Nextcloud's CA into the image's system store, which the appliance reads through SSL_CERT_FILE:"
                " outside the image, set SSL_CERT_FILE to a CA bundle that holds it"
            )
        return (
            f"cannot reach Nextcloud at {self.shown_url} ({type(exc).__name__}); check NEXTCLOUD_URL and that"
            " Nextcloud is up"
        )

    async def aclose(self) -> None:
        """Close the connection pool; safe to call twice."""
        if not self._closed:
            self._closed = True
            await self._http.aclose()


def nextcloud_base_url(url: str) -> str:
    """NEXTCLOUD_URL without a trailing slash or "/index.php": AppAPI's deploy daemon form fills in
    <origin>/index.php on a Nextcloud without pretty URLs, and /index.php/ocs/... is not an OCS route."""
    return url.rstrip("/").removesuffix("/index.php").rstrip("/")


def error_for_status(
    method: str, path: str, status: int, message: str, headers: Mapping[str, str] | None = None
) -> NextcloudError:
    """The error class for an HTTP (or OCS meta) status."""
    text = f"{method} {path}: Nextcloud answered {status}" + (f" ({message})" if message else "")
    if status == 404:
        return NextcloudNotFoundError(text, status)
    if status in (401, 412):
        return NextcloudAuthError(
            f"{text}; AppAPI did not accept APP_ID/APP_SECRET: re-register the ExApp or check its secret", status
        )
    retry_after_s = _retry_after((headers or {}).get("retry-after"))
    if status == 429:
        return NextcloudRateLimitedError(text, retry_after_s)
    if status == 408:
        return NextcloudTimeoutError(text)
    if status >= 500:
        return NextcloudServerError(text, status, retry_after_s)
    return NextcloudRequestError(text, status)


def _home_not_set_up(error_body: bytes, user: str) -> bool:
    """Whether a WebDAV error is Nextcloud's for a user whose home it never set up: the folder `/<user>/files` not
    found (NC 34 answers a SEARCH so, as a user who never logged in, with 500)."""
    try:
        root = ElementTree.fromstring(error_body[:ERROR_BODY_BYTES])
    except ElementTree.ParseError:
        return False
    exception = (root.findtext(f"{_SABRE}exception") or "").strip()
    folder = (root.findtext(f"{_SABRE}message") or "").strip()
    return exception == "OCP\\Files\\NotFoundException" and folder == f"/{user}/files"


def _retry_after(raw: str | None) -> float | None:
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None  # an HTTP date: rare, and the caller's own backoff applies


def _json_or_none(body: bytes) -> Any:
    try:
        return jsonlib.loads(body) if body else None
    except ValueError:
        return None


def _message(payload: Any, meta: Mapping[str, Any]) -> str:
    """The error text Nextcloud gave: OCS meta message, or the `error`/`message` of a plain JSON body."""
    if meta.get("message"):
        return str(meta["message"])[:200]
    if isinstance(payload, dict):
        data = payload.get("ocs", {}).get("data") if "ocs" in payload else payload
        if isinstance(data, dict):
            for key in ("error", "message"):
                if data.get(key):
                    return str(data[key])[:200]
    return ""


async def _read_some(response: httpx.Response) -> bytes:
    body = bytearray()
    async for piece in response.aiter_raw():
        body += piece
        if len(body) >= ERROR_BODY_BYTES:
            break
    return bytes(body)
