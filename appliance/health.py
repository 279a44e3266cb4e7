"""Health of the running appliance: the app's /heartbeat, PostgreSQL's SELECT 1, the embedder's /health and, behind
HaRP, supervisord's frpc.

Healthy means AppAPI can go on with the app: an embedder whose model POST /init has yet to fetch cannot answer, and
counting it would keep the container unhealthy, so that HaRP never sends the /init that fetches it."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from appliance.app_client import AppClient, AppRequestError, AppTarget, AppUnreachableError
from appliance.app_role import EMBEDDER_DUTIES, AppRole, app_role, needs_any
from appliance.config import AppConfig
from appliance.database_url import shown_database_url
from appliance.env_settings import connect_host, env_value
from appliance.machine_report import program_states
from appliance.model_catalogue import load_catalogue
from appliance.model_fetch import plan_downloads
from appliance.storage import StorageLayout
from appliance.url_redaction import redacted_url


@dataclass(frozen=True)
class CheckResult:
    """One part of the appliance: up or not, and what was seen."""

    part: str
    ok: bool
    detail: str


def _get(url: str, timeout_s: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    # no proxies: the parts are local, and an inherited http_proxy would answer in their place
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout_s) as response:
            return int(response.status), bytes(response.read(4096))
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""


def check_app(target: AppTarget, timeout_s: float = 5.0) -> CheckResult:
    """AppAPI's readiness probe: GET /heartbeat must answer 200 {"status": "ok"}."""
    url = f"{target.where}/heartbeat"
    with AppClient(target, timeout_s) as app:
        try:
            app.heartbeat(timeout_s)
        except AppUnreachableError as exc:
            return CheckResult("app", False, str(exc))
        except AppRequestError as exc:
            return CheckResult("app", False, f"{url}: HTTP {exc.status}, {exc.message}")
    return CheckResult("app", True, url)


def check_database(url: str, timeout_s: float = 5.0) -> CheckResult:
    """The database the app uses accepts a connection and SELECT 1."""
    shown = shown_database_url(url)
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout_s))) as conn:
            row = conn.execute("SELECT 1").fetchone()
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return CheckResult("postgres", False, f"{shown}: {first_line}")
    if row != (1,):
        return CheckResult("postgres", False, f"{shown}: SELECT 1 returned {row!r}")
    return CheckResult("postgres", True, shown)


def model_awaiting_init(config: AppConfig, model_dir: Path) -> str | None:
    """Why the local embedder cannot answer yet because POST /init has not fetched its model, or None."""
    model_id = config.embedding.local_model
    for item in plan_downloads([model_id], load_catalogue(), model_dir):
        # /init renames a file into place only once it verified, so its presence is enough here
        if not item.dest.is_file():
            return f"skipped: POST /init has not fetched model {model_id!r} yet ({item.dest} is missing)"
    return None


def check_embedder(
    config: AppConfig, timeout_s: float = 5.0, role: AppRole = AppRole.NORMAL, model_dir: Path | None = None
) -> CheckResult:
    """The local embedder program answers GET /health; skipped when embedding.workers = 0 (external service), the
    role embeds nothing (no embedder program runs) or its model in `model_dir` waits for POST /init."""
    if config.embedding.workers == 0:
        external = redacted_url(config.embedding.base_url)
        return CheckResult("embedder", True, f"skipped: embedding.workers = 0, external {external}")
    if not needs_any(role, EMBEDDER_DUTIES):
        return CheckResult("embedder", True, f"skipped: APP_ROLE={role} embeds nothing and runs no embedder")
    awaiting = None if model_dir is None else model_awaiting_init(config, model_dir)
    if awaiting is not None:
        return CheckResult("embedder", True, awaiting)
    url = f"http://{connect_host(config.embedding.host)}:{config.embedding.port}/health"
    try:
        status, body = _get(url, timeout_s)
    except (OSError, ValueError) as exc:
        return CheckResult("embedder", False, f"{url}: {exc}")
    if status != 200:
        return CheckResult("embedder", False, f"{url}: HTTP {status}, body {body[:200]!r}")
    return CheckResult("embedder", True, url)


def tunnel_result(states: Mapping[str, str] | str) -> CheckResult:
    """frpc's state among supervisord's programs (or why supervisord could not be asked)."""
    state = states if isinstance(states, str) else states.get("frpc", "not a program of this supervisord")
    if state == "RUNNING":
        return CheckResult("frpc", True, "RUNNING: HaRP's tunnel to the app")
    return CheckResult("frpc", False, f"{state}; HaRP reaches the app only through frpc, see `ccb logs frpc`")


def check_all(
    config: AppConfig, database_url: str, environ: Mapping[str, str] | None = None, timeout_s: float = 5.0
) -> list[CheckResult]:
    """All parts, each checked even when another one failed; frpc only behind HaRP (HP_SHARED_KEY)."""
    layout = StorageLayout.from_env(environ)
    results = [
        check_app(AppTarget.from_env(environ), timeout_s),
        check_database(database_url, timeout_s),
        check_embedder(config, timeout_s, app_role(environ), layout.model_dir),
    ]
    if env_value("HP_SHARED_KEY", environ):
        results.append(tunnel_result(program_states(layout)))
    return results
