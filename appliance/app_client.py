"""The signed client of our own app: AppAPI's headers, the PHP app's multipart batches, one call per route.

Used by `ccb`, the health check, the tests' kits and the benchmarks. It reads what the appliance reads: APP_ID,
APP_VERSION, APP_HOST/APP_PORT (or the launch env `prepare` wrote) and APP_SECRET (or the generated local secret).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from appliance.app_secret import read_app_secret
from appliance.env_settings import app_base_url, env_value
from appliance.harp_tunnel import app_socket
from appliance.launch import launch_env_path, read_launch_env
from appliance.storage import StorageLayout


class AppClientError(Exception):
    """A call to our app did not give the answer asked for; the message says what to do."""


class AppUnreachableError(AppClientError):
    """Nothing answers at the app's address (not started, wrong APP_HOST/APP_PORT)."""


class AppRequestError(AppClientError):
    """The app answered with an error status; `status`, the app's own message and its JSON body (None if it sent
    none) are kept."""

    def __init__(self, method: str, path: str, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.body = body


def signed_headers(
    user: str, *, secret: str, app_id: str, version: str, aa_version: str | None = None
) -> dict[str, str]:
    """AppAPI's AppAPICommonService::buildAppAPIAuthHeaders for `user` ("" = no user)."""
    headers = {
        "EX-APP-ID": app_id,
        "EX-APP-VERSION": version,
        "AUTHORIZATION-APP-API": base64.b64encode(f"{user}:{secret}".encode()).decode(),
        "AA-REQUEST-ID": uuid.uuid4().hex,
        "Accept-Language": "en",
    }
    if aa_version is not None:
        headers["AA-VERSION"] = aa_version
    return headers


@dataclass(frozen=True)
class SourcePart:
    """One `sources` part as the PHP app's LangRopeService::indexSources builds it (4.0+ userIds, beta userId)."""

    source_id: str
    content: bytes
    user_ids: Sequence[str] | None = ("admin",)
    title: str | None = "Documents/notes.txt"
    mimetype: str | None = "text/plain"
    modified: str | int | None = 1733000000
    provider: str | None = "files__default"
    beta_user_id: str | None = None

    def headers(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if self.beta_user_id is not None:
            found.append(("userId", self.beta_user_id))
        if self.user_ids is not None:
            found.append(("userIds", ",".join(self.user_ids)))
        for name, value in (
            ("title", self.title),
            ("type", self.mimetype),
            ("modified", self.modified),
            ("provider", self.provider),
        ):
            if value is not None:
                found.append((name, str(value)))
        return found


def guzzle_boundary() -> str:
    """Guzzle's MultipartStream: sha1(uniqid('', true))."""
    return hashlib.sha1(uuid.uuid4().bytes).hexdigest()


def guzzle_multipart(parts: Sequence[SourcePart], boundary: str | None = None) -> tuple[bytes, str]:
    """(body, Content-Type) byte-for-byte like Guzzle: custom headers, then Content-Disposition, Content-Length.

    Header values are PHP strings, i.e. raw UTF-8 bytes (a receiver that decodes latin-1 sees mojibake).
    """
    boundary = boundary or guzzle_boundary()
    out = bytearray()
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in part.headers():
            out += name.encode() + b": " + value.encode("utf-8") + b"\r\n"
        disposition = f'form-data; name="sources"; filename="{part.source_id}"'
        out += b"Content-Disposition: " + disposition.encode("utf-8") + b"\r\n"
        if part.content:
            out += f"Content-Length: {len(part.content)}\r\n".encode()
        out += b"\r\n" + part.content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


@dataclass(frozen=True)
class AppTarget:
    """Where the app listens and how it is signed for."""

    base_url: str
    app_id: str
    version: str
    secret: str = field(repr=False)
    # behind HaRP the app listens here instead of base_url's host and port
    socket: str | None = None

    @property
    def where(self) -> str:
        return f"unix:{self.socket}" if self.socket else self.base_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppTarget:
        """Behind HaRP (HP_SHARED_KEY) the app's unix socket; else APP_HOST/APP_PORT when set, else the address the
        last `prepare` on this storage recorded, else defaults."""
        env = os.environ if environ is None else environ
        layout = StorageLayout.from_env(env)
        launch = read_launch_env(launch_env_path(layout))
        recorded, socket = launch.get("CCB_APP_URL"), launch.get("CCB_APP_SOCKET") or None
        if env.get("APP_HOST") or env.get("APP_PORT") or not recorded:
            recorded, socket = app_base_url(env), None
        harp_socket = app_socket(env)
        return cls(
            base_url=recorded,
            app_id=env_value("APP_ID", env) or "context_chat_backend",
            version=env_value("APP_VERSION", env) or "4.0.0",
            secret=read_app_secret(layout, env),
            socket=str(harp_socket) if harp_socket else socket,
        )


class AppClient:
    """A synchronous httpx client bound to one `AppTarget`; `with AppClient(...) as app:` closes it."""

    def __init__(self, target: AppTarget, timeout_s: float = 300.0) -> None:
        self.target = target
        # no proxies: the app is local, and an inherited http_proxy would answer in its place
        transport = httpx.HTTPTransport(uds=target.socket) if target.socket else None
        self._http = httpx.Client(base_url=target.base_url, timeout=timeout_s, trust_env=False, transport=transport)

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def headers(self, user: str = "") -> dict[str, str]:
        target = self.target
        return signed_headers(user, secret=target.secret, app_id=target.app_id, version=target.version)

    def _unix_socket_refusal(self) -> OSError | None:
        """Why the app's unix socket takes no connection, or None (also None for a TCP target).

        httpcore leaves its socket open when a unix-socket connect fails (a ResourceWarning at each try while the
        app starts); a connect of our own, closed either way, answers first."""
        if not self.target.socket:
            return None
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(self.target.socket)
            except OSError as exc:
                return exc
        return None

    def send(self, method: str, path: str, *, user: str = "", **kwargs: Any) -> httpx.Response:
        """The raw signed request; AppUnreachableError when nothing answers."""
        headers = {**self.headers(user), **kwargs.pop("headers", {})}
        try:
            if refusal := self._unix_socket_refusal():
                raise httpx.ConnectError(str(refusal))
            return self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise AppUnreachableError(
                f"the app does not answer at {self.target.where} ({exc or type(exc).__name__}); start it with"
                " `make run`, or set APP_HOST/APP_PORT (and APP_PERSISTENT_STORAGE) to the ones it was started with"
            ) from exc

    def call(self, method: str, path: str, *, user: str = "", **kwargs: Any) -> Any:
        """The decoded JSON answer of a 2xx, else AppRequestError with the app's message."""
        response = self.send(method, path, user=user, **kwargs)
        if response.is_success:
            return response.json()
        try:
            body = response.json()
        except ValueError:
            raise AppRequestError(method, path, response.status_code, response.text[:300]) from None
        raise AppRequestError(method, path, response.status_code, _error_message(body), body)

    def heartbeat(self, timeout_s: float = 5.0) -> None:
        """GET /heartbeat, unsigned as AppAPI sends it; raises unless the answer is 200 {"status": "ok"}."""
        url = f"{self.target.where}/heartbeat"
        try:
            if refusal := self._unix_socket_refusal():
                raise httpx.ConnectError(str(refusal))
            response = self._http.get("/heartbeat", timeout=timeout_s, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            raise AppUnreachableError(f"{url}: {exc or type(exc).__name__}") from exc
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code != 200 or payload != {"status": "ok"}:
            raise AppRequestError("GET", "/heartbeat", response.status_code, f"body {response.content[:200]!r}")

    def enable(self, enabled: bool = True) -> Any:
        return self.call("PUT", f"/enabled?enabled={int(enabled)}")

    def load_sources(self, parts: Sequence[SourcePart]) -> Any:
        body, content_type = guzzle_multipart(parts)
        return self.call("PUT", "/loadSources", content=body, headers={"Content-Type": content_type})

    def query(self, user: str, question: str, **extra: Any) -> Any:
        return self.call("POST", "/query", user=user, json={"userId": user, "query": question, **extra})

    def doc_search(self, user: str, question: str, **extra: Any) -> Any:
        return self.call("POST", "/docSearch", user=user, json={"userId": user, "query": question, **extra})

    def status(self) -> Any:
        return self.call("GET", "/status")


def _error_message(body: Any) -> str:
    """The app's `error` or `detail`, else the body."""
    if isinstance(body, dict):
        return str(body.get("error") or body.get("detail") or body)
    return str(body)
