"""What the PHP app and AppAPI put on the wire, rebuilt for tests: signed headers and Guzzle-shaped multipart."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_ports import free_port  # noqa: F401  # re-exported for the tests of this folder
from server_process import ServerProcess  # noqa: F401  # re-exported for the tests of this folder

from appliance.config import parse_config
from appliance.storage import StorageLayout
from quart_app.app_settings import AppSettings

APP_ID = "context_chat_backend"
APP_VERSION = "4.3.0"
AA_VERSION = "5.0.2"
# distinctive so a test can grep the logs for it
APP_SECRET = "s3cret-contract-0123456789abcdef"


def signed_headers(
    user: str = "",
    *,
    secret: str = APP_SECRET,
    app_id: str = APP_ID,
    version: str = APP_VERSION,
    aa_version: str | None = AA_VERSION,
) -> dict[str, str]:
    """AppAPI's AppAPICommonService::buildAppAPIAuthHeaders."""
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
    """One `sources` part as LangRopeService::indexSources builds it (4.0+ userIds, beta userId)."""

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


def contract_config(embedder_url: str, **overrides: Any) -> dict[str, Any]:
    """A small config: our embedder, the extractive LLM (fast, deterministic), one parser process."""
    raw: dict[str, Any] = {
        "embedding": {"base_url": embedder_url, "workers": 1, "chunk_tokens": 96, "chunk_overlap_tokens": 8},
        "embedding_worker": {"idle_poll_s": 0.2, "backoff_base_s": 0.2},
        "llm": {"extractive": {}},
        "ingest": {"parse_workers": 1, "max_part_mb": 2, "max_request_mb": 8, "max_parts": 20},
        "pgvector": {"pool_max": 4},
    }
    raw.update(overrides)
    return raw


def make_settings(root: Path, dsn: str, raw_config: dict[str, Any], nextcloud_url: str | None = None) -> AppSettings:
    return AppSettings(
        config=parse_config(raw_config, "contract-test", environ={}),
        storage=StorageLayout(root),
        db_url=dsn,
        app_id=APP_ID,
        app_secret=APP_SECRET,
        app_version=APP_VERSION,
        aa_version="5.0.2",
        nextcloud_url=nextcloud_url,
    )
