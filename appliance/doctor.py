"""`ccb doctor`: the things users get wrong, each checked on its own and named with what to do about it."""

from __future__ import annotations

import email.utils
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import psycopg

from appliance.app_client import AppClient, AppRequestError, AppTarget, AppUnreachableError
from appliance.config import AppConfig, load_config
from appliance.config_files import CONFIGS_DIR, defaults_it_lacks
from appliance.database_url import read_database_url, resolve_database
from appliance.env_settings import env_value
from appliance.errors import ApplianceError
from appliance.harp_tunnel import harp_tunnel
from appliance.health import CheckResult, check_database, check_embedder, tunnel_result
from appliance.launch import active_config_path
from appliance.machine_report import program_states
from appliance.model_catalogue import CatalogueError, get_model, resolve_model_files
from appliance.probe import probe_cpu
from appliance.storage import StorageLayout
from appliance.url_redaction import redacted_url
from quart_app.nextcloud.client import nextcloud_base_url
from quart_app.store.pgvector_check import PGVECTOR_STATE_SQL, PgvectorState, too_old_message

Outcome = Literal["ok", "warn", "fail", "skip"]
# below this much free space on the storage, ingest and PostgreSQL soon stop
DISK_FAIL_MB = 512
DISK_WARN_MB = 2048
CLOCK_SKEW_WARN_S = 30.0
_START_FIX = "start the appliance with `make run`; `python -m appliance ctl status` shows its programs"


@dataclass(frozen=True)
class Check:
    """One check: its outcome, what was seen and, unless ok, what to do."""

    name: str
    outcome: Outcome
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def _cpu() -> Check:
    cpu = probe_cpu()
    if cpu.llama_cpp_supported is None:
        return Check("cpu", "skip", f"{cpu.arch}: AVX2 is only required on x86-64")
    if cpu.llama_cpp_supported:
        return Check("cpu", "ok", f"{cpu.arch} with AVX2, FMA, F16C")
    missing = ", ".join(cpu.missing_for_llama_cpp)
    return Check(
        "cpu", "warn", f"missing {missing}", "llama.cpp cannot run here; keep `llm: nc_texttotext` or extractive"
    )


def _disk(layout: StorageLayout) -> Check:
    try:
        free_mb = shutil.disk_usage(layout.root).free // (1024 * 1024)
    except OSError as exc:
        return Check(
            "disk",
            "fail",
            f"cannot read the storage {layout.root}: {exc.strerror}",
            "set APP_PERSISTENT_STORAGE to the storage the appliance was started with, or start it once with"
            " `make run` to create it",
        )
    detail = f"{free_mb} MB free on {layout.root}"
    fix = "free space there or set APP_PERSISTENT_STORAGE to a larger disk"
    if free_mb < DISK_FAIL_MB:
        return Check("disk", "fail", detail, fix)
    return Check("disk", "warn", detail, fix) if free_mb < DISK_WARN_MB else Check("disk", "ok", detail)


def _models(config: AppConfig, layout: StorageLayout) -> Check:
    wanted = [config.embedding.onnx.model]
    llm_model = getattr(config.llm, "model", None)
    if config.llm_backend in ("llama", "ctransformer") and llm_model:
        wanted.append(llm_model)
    found = []
    for model_id in wanted:
        try:
            files = resolve_model_files(get_model(model_id), layout.model_dir)
        except CatalogueError as exc:
            return Check("models", "fail", str(exc), "run `make install`, or let AppAPI call POST /init to fetch it")
        found.append(f"{model_id} ({files.model.name})")
    return Check("models", "ok", ", ".join(found))


def _program_check(part: CheckResult, layout: StorageLayout) -> Check:
    """A part's health check as a doctor's check; when it failed, the fix follows supervisord's state of its program:
    another `make run` is refused on a storage whose appliance runs, so that is only the fix when none runs."""
    if part.ok:
        return Check(part.part, "ok", part.detail)
    states = program_states(layout)
    state = None if isinstance(states, str) else states.get(part.part)
    if state is None:
        return Check(part.part, "fail", part.detail, _START_FIX)
    if state in ("STOPPED", "EXITED", "FATAL"):
        fix = (
            f"supervisord's program {part.part} is {state}: start it with `python -m appliance ctl start {part.part}`;"
            f" `ccb logs {part.part}` says why it stopped"
        )
    else:
        fix = f"supervisord's program {part.part} is {state} but does not answer: `ccb logs {part.part}` says why"
    return Check(part.part, "fail", part.detail, fix)


def _pgvector(url: str) -> Check:
    """pgvector >= 0.8 in the app's database, or installable there by the app's user at start."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            state = PgvectorState(*(conn.execute(PGVECTOR_STATE_SQL).fetchone() or ()))
    except psycopg.Error as exc:
        return Check("pgvector", "skip", f"cannot ask the database: {str(exc).strip().splitlines()[0]}")
    problem = too_old_message(state)
    if problem is not None:
        return Check("pgvector", "fail", problem, "update pgvector as the detail says, then restart the app")
    if state.installed is None and not state.superuser:
        return Check(
            "pgvector",
            "warn",
            f"database {state.database!r} has no vector extension yet and user {state.user!r} is no superuser",
            f"run `CREATE EXTENSION vector;` in database {state.database!r} as a superuser before the app starts",
        )
    return Check("pgvector", "ok", f"pgvector {state.installed or state.available} in database {state.database!r}")


def _app(target: AppTarget, layout: StorageLayout) -> tuple[Check, dict[str, Any] | None]:
    """The app answers /heartbeat, accepts our signature (GET /enabled) and is enabled; its /status for the rest."""
    with AppClient(target, timeout_s=10) as app:
        try:
            app.heartbeat()
            enabled = app.call("GET", "/enabled")["enabled"]
            report = app.status()
        except AppUnreachableError as exc:
            return _program_check(CheckResult("app", False, str(exc)), layout), None
        except AppRequestError as exc:
            if exc.status == 401:
                fix = "check APP_SECRET / APP_PERSISTENT_STORAGE match the running appliance"
            elif exc.status >= 500:
                fix = _unserved_fix(exc.body)
            else:
                fix = "see `ccb logs app`"
            return Check("app", "fail", str(exc), fix), None
    if not enabled:
        return Check(
            "app", "fail", f"{target.where}: disabled", "enable it from AppAPI (Nextcloud's Apps page)"
        ), report
    return Check("app", "ok", f"{target.where}: enabled, signature accepted"), report


def _unserved_fix(body: Any) -> str:
    """What to do about a 5xx from GET /status: it runs, and what it waits for (PostgreSQL, its engine still
    opening) is in its answer, whose partial report names it."""
    report = body if isinstance(body, dict) else {}
    if (report.get("database") or {}).get("state") == "unavailable":
        return (
            "the app waits for PostgreSQL: start it (the postgres check above says how) or check the server"
            " EXTERNAL_DB names; indexing and questions resume by themselves once it is back"
        )
    opening = (report.get("loops") or {}).get("engine_opening") or {}
    if opening.get("state") in ("opening", "waiting", "failed"):
        return (
            f"its engine has not opened yet ({opening['state']}: {opening['detail']}); it opens by itself once that"
            " is done; `ccb logs app` tells each step"
        )
    return "the app runs but cannot serve: its answer above says why; `ccb logs app` has more"


def _nextcloud(environ: Mapping[str, str] | None, report: dict[str, Any] | None) -> list[Check]:
    """Nextcloud answers status.php; the PHP app's direction (pull 5.4+ / push) as the app saw it; clock skew."""
    url = env_value("NEXTCLOUD_URL", environ)
    if not url:
        return [Check("nextcloud", "skip", "NEXTCLOUD_URL is not set: standalone use (ccb index / ccb ask)")]
    shown = redacted_url(url)
    try:
        response = httpx.get(f"{nextcloud_base_url(url)}/status.php", timeout=10, follow_redirects=True)
        info = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return [Check("nextcloud", "fail", f"{shown}: {exc}", "check NEXTCLOUD_URL and that Nextcloud is up")]
    pull = (report or {}).get("pull", {}).get("php_app_queues")
    direction = {True: "pull (context_chat 5.4+)", False: "push (context_chat <= 5.3)"}.get(pull, "not known yet")
    checks = [Check("nextcloud", "ok", f"{shown}: Nextcloud {info.get('versionstring', '?')}; direction {direction}")]
    served = response.headers.get("date")
    if served:
        skew = time.time() - email.utils.parsedate_to_datetime(served).timestamp()
        outcome: Outcome = "warn" if abs(skew) > CLOCK_SKEW_WARN_S else "ok"
        checks.append(Check("clock", outcome, f"{skew:+.0f} s against Nextcloud", "" if outcome == "ok" else "run NTP"))
    return checks


def _harp(layout: StorageLayout, environ: Mapping[str, str] | None) -> list[Check]:
    """Behind HaRP (HP_SHARED_KEY), the tunnel frpc keeps open and where it goes; nothing otherwise."""
    if not env_value("HP_SHARED_KEY", environ):
        return []
    try:
        tunnel = harp_tunnel(environ)
    except ApplianceError as exc:
        return [Check("frpc", "fail", str(exc), "redeploy the ExApp from AppAPI so that it sets the HP_* variables")]
    part = tunnel_result(program_states(layout))
    where = f"; carries {tunnel.describe()}" if tunnel else ""
    if part.ok:
        return [Check("frpc", "ok", part.detail + where)]
    fix = "`ccb logs frpc` says why (a wrong key or HaRP address, HaRP down); `python -m appliance ctl start frpc`"
    return [Check("frpc", "fail", part.detail + where, fix)]


def _config_defaults(config_file: Path, configs_dir: Path = CONFIGS_DIR) -> list[Check]:
    """A warning when the edited config lacks defaults its template changed since it was copied; none otherwise."""
    template, lacking = defaults_it_lacks(config_file, configs_dir)
    if not lacking:
        return []
    return [
        Check(
            "config",
            "warn",
            f"{config_file} lacks {len(lacking)} new default(s) of configs/{template}: {'; '.join(lacking)}",
            f"copy the ones you want from configs/{template}, or re-copy it with `python -m appliance config --reset`"
            " (the old file is kept as config.yaml.bak)",
        )
    ]


def run_doctor(environ: Mapping[str, str] | None = None) -> list[Check]:
    """Every check; one failing never stops the others."""
    layout = StorageLayout.from_env(environ)
    checks = [_cpu(), _disk(layout)]
    config_file = active_config_path(layout, environ)
    try:
        config = load_config(config_file, environ)
    except ApplianceError as exc:
        return [*checks, Check("config", "fail", str(exc), "run `make run` once to create it")]
    checks.extend(_config_defaults(config_file))
    checks.append(_models(config, layout))
    url = read_database_url(layout) or resolve_database(config, layout, environ).url
    checks += [_program_check(part, layout) for part in (check_database(url), check_embedder(config))]
    checks.append(_pgvector(url))
    app_check, report = _app(AppTarget.from_env(environ), layout)
    checks.append(app_check)
    checks.extend(_nextcloud(environ, report))
    checks.extend(_harp(layout, environ))
    return checks
