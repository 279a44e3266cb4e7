"""The environment settings the appliance reads, declared once: name, type, default, help, secret."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import SettingsError
from appliance.url_redaction import redacted_url


@dataclass(frozen=True)
class EnvSetting:
    """One environment variable the appliance understands."""

    name: str
    type: type
    default: str | None
    help: str
    secret: bool = False


ENV_SETTINGS: tuple[EnvSetting, ...] = (
    EnvSetting("APP_ID", str, "context_chat_backend", "ExApp id; requests must carry it in EX-APP-ID"),
    EnvSetting("APP_VERSION", str, "4.0.0", "ExApp version; drives repairs (version.info)"),
    EnvSetting("APP_SECRET", str, None, "shared secret with AppAPI (AUTHORIZATION-APP-API)", secret=True),
    EnvSetting("APP_HOST", str, "127.0.0.1", "address the app listens on"),
    EnvSetting("APP_PORT", int, "10034", "port the app listens on"),
    EnvSetting("APP_PERSISTENT_STORAGE", Path, "persistent_storage", "config, database, models and logs live here"),
    EnvSetting("NEXTCLOUD_URL", str, None, "Nextcloud base URL for OCS calls (init status, task processing)"),
    EnvSetting("AA_VERSION", str, None, "AppAPI version, sent back as AA-VERSION"),
    EnvSetting("COMPUTE_DEVICE", str, "auto", "auto (the probe decides), CPU, CUDA or ROCM (ROCM = GPU config)"),
    EnvSetting("EXTERNAL_DB", str, None, "postgresql:// URL of an external PostgreSQL with pgvector", secret=True),
    EnvSetting("CC_EM_BASE_URL", str, None, "external OpenAI-compatible embedding endpoint (overrides config)"),
    EnvSetting("CC_EM_MODEL_NAME", str, None, "model name sent to the embedding endpoint"),
    EnvSetting("CC_EM_APIKEY", str, None, "bearer key for the embedding endpoint", secret=True),
    EnvSetting("CC_EM_USERNAME", str, None, "HTTP Basic user for the embedding endpoint (with CC_EM_PASSWORD)"),
    EnvSetting("CC_EM_PASSWORD", str, None, "HTTP Basic password for the embedding endpoint", secret=True),
    EnvSetting(
        "CC_DOWNLOAD_MODELS_FROM_HF",
        str,
        "true",
        "false, 0 or no: POST /init downloads no model; place the files in model_files yourself",
    ),
    EnvSetting("CC_CONFIG_PATH", Path, None, "config file path (default $APP_PERSISTENT_STORAGE/config.yaml)"),
    EnvSetting("HP_SHARED_KEY", str, None, "HaRP's shared key: set by AppAPI, frpc logs in with it", secret=True),
    EnvSetting("HP_FRP_ADDRESS", str, None, "host of HaRP's FRP server, where frpc connects (set by AppAPI)"),
    EnvSetting("HP_FRP_PORT", int, None, "port of HaRP's FRP server (set by AppAPI)"),
    EnvSetting("HP_EXAPP_SOCK", str, "/tmp/exapp.sock", "unix socket the app listens on behind HaRP (frpc's target)"),
    EnvSetting(
        "APP_ROLE",
        str,
        "normal",
        "what runs here: normal (everything), indexing, updatesproc, requestproc, embedding-worker",
    ),
)

_BY_NAME = {setting.name: setting for setting in ENV_SETTINGS}
# a wildcard bind address is reachable on loopback
_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The raw value of a declared setting: the environment's, else its default (None when it has none)."""
    setting = _BY_NAME[name]
    value = (os.environ if environ is None else environ).get(name)
    return value if value not in (None, "") else setting.default


def env_int(name: str, environ: Mapping[str, str] | None = None) -> int:
    """A declared integer setting, with an error that names the variable and its value."""
    raw = env_value(name, environ)
    try:
        return int(raw or "")
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer; set it to a number such as 10034") from None


def env_port(name: str, environ: Mapping[str, str] | None = None) -> int:
    """A declared TCP port setting: an integer from 1 to 65535, else an error naming the variable and its value."""
    port = env_int(name, environ)
    if not 0 < port < 65536:
        raise SettingsError(f"{name}={port} is not a TCP port (1-65535); set it to a free port such as 10034")
    return port


def connect_host(host: str) -> str:
    """A bind address as a host to connect to: wildcards become loopback, IPv6 gets brackets."""
    host = host.strip("[]")
    host = _WILDCARD.get(host, host)
    return f"[{host}]" if ":" in host else host


def app_bind(environ: Mapping[str, str] | None = None, socket: str | None = None) -> str:
    """hypercorn's --bind: unix:SOCKET when given, else APP_HOST:APP_PORT (an IPv6 host in brackets)."""
    if socket:
        return f"unix:{socket}"
    host = (env_value("APP_HOST", environ) or "").strip("[]")
    return f"{f'[{host}]' if ':' in host else host}:{env_port('APP_PORT', environ)}"


def app_base_url(environ: Mapping[str, str] | None = None) -> str:
    """Where this machine reaches the app: http://APP_HOST:APP_PORT, a wildcard bind address as loopback."""
    return f"http://{connect_host(env_value('APP_HOST', environ) or '')}:{env_port('APP_PORT', environ)}"


def describe_env(environ: Mapping[str, str] | None = None) -> list[dict[str, str | bool | None]]:
    """Every declared setting with its current value; secrets are shown only as set / not set."""
    rows: list[dict[str, str | bool | None]] = []
    for setting in ENV_SETTINGS:
        value = env_value(setting.name, environ)
        if setting.secret:
            shown: str | None = "(set)" if value else "(not set)"
        else:
            shown = value if value is None else redacted_url(value)
        rows.append({"name": setting.name, "value": shown, "default": setting.default, "help": setting.help})
    return rows
