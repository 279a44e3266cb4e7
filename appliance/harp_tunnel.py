"""HaRP's FRP tunnel: behind a HaRP deploy daemon (Nextcloud 32+), AppAPI reaches the app only through frpc.

AppAPI gives an ExApp it deploys through HaRP three variables (not in HaRP's direct-connect mode, not on k8s):
HP_SHARED_KEY, HP_FRP_ADDRESS and HP_FRP_PORT. frpc logs in to HaRP's FRP server with the key and asks it to open
APP_PORT on HaRP's loopback; HaRP's HAProxy sends every /exapps/<APP_ID>/ request there, and frpc carries it to
the app. Without the tunnel the container runs, and AppAPI's heartbeat never reaches it.

Behind HaRP the app listens on a unix socket, not on APP_HOST:APP_PORT: with host networking HaRP's own listener
holds 127.0.0.1:APP_PORT (as HaRP's template and nc_py_api do, HP_EXAPP_SOCK or /tmp/exapp.sock).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from appliance.env_settings import env_port, env_value
from appliance.errors import SettingsError
from appliance.safe_fs import replace_file
from appliance.storage import StorageLayout

# where HaRP's agent copies the FRP client certificate before it starts the container
FRP_CERTS_DIR = Path("/certs/frp")
_CERT_FILES = ("client.crt", "client.key", "ca.crt")
# the name HaRP's FRP server certificate is issued for
_SERVER_NAME = "harp.nc"


@dataclass(frozen=True)
class HarpTunnel:
    """Where frpc logs in, what it carries, and whether HaRP gave it TLS certificates."""

    server_host: str
    server_port: int
    app_id: str
    app_port: int
    app_socket: Path
    certs_dir: Path | None

    def describe(self) -> str:
        tls = f"TLS with {self.certs_dir}" if self.certs_dir else "no TLS: HaRP gave no certificates"
        server = f"{self.server_host}:{self.server_port}"
        return f"the app's socket {self.app_socket} as port {self.app_port} of {server} ({tls})"


def harp_tunnel(environ: Mapping[str, str] | None = None, certs_dir: Path = FRP_CERTS_DIR) -> HarpTunnel | None:
    """The tunnel AppAPI asked for, None when HP_SHARED_KEY is not set (no HaRP, or HaRP's direct connect)."""
    if not env_value("HP_SHARED_KEY", environ):
        return None
    missing = [name for name in ("HP_FRP_ADDRESS", "HP_FRP_PORT") if not env_value(name, environ)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise SettingsError(
            f"HP_SHARED_KEY is set (a HaRP deploy daemon) but {' and '.join(missing)} {verb} not: set HP_FRP_ADDRESS"
            " and HP_FRP_PORT to the host and port of HaRP's FRP server, or unset HP_SHARED_KEY when the appliance is"
            " not deployed through HaRP"
        )
    server_port = env_port("HP_FRP_PORT", environ)
    app_port = env_port("APP_PORT", environ)
    has_certs = all((certs_dir / name).is_file() for name in _CERT_FILES)
    return HarpTunnel(
        server_host=str(env_value("HP_FRP_ADDRESS", environ)),  # not missing
        server_port=server_port,
        app_id=env_value("APP_ID", environ) or "",
        app_port=app_port,
        app_socket=_socket_path(environ),
        certs_dir=certs_dir if has_certs else None,
    )


def app_socket(environ: Mapping[str, str] | None = None) -> Path | None:
    """The unix socket the app listens on behind HaRP (HP_SHARED_KEY); None elsewhere (it listens on TCP)."""
    return _socket_path(environ) if env_value("HP_SHARED_KEY", environ) else None


def _socket_path(environ: Mapping[str, str] | None) -> Path:
    return Path(str(env_value("HP_EXAPP_SOCK", environ)))  # the setting has a default


def _toml(value: str | int | bool) -> str:
    # a JSON string is a TOML basic string: quotes, backslashes and control characters escaped
    return json.dumps(value)


def frpc_config(tunnel: HarpTunnel, shared_key: str) -> str:
    """frpc's TOML: log in with the key (HaRP's login plugin checks metadatas.token), retry while HaRP is down,
    and one TCP proxy from APP_PORT on HaRP's side to the app's unix socket."""
    lines = [
        f"serverAddr = {_toml(tunnel.server_host)}",
        f"serverPort = {tunnel.server_port}",
        "loginFailExit = false",
        # frp colours its console lines whether or not a terminal reads them; logs/frpc.log is a file
        "log.disablePrintColor = true",
        f"transport.tls.enable = {_toml(tunnel.certs_dir is not None)}",
    ]
    if tunnel.certs_dir is not None:
        lines += [
            f"transport.tls.certFile = {_toml(str(tunnel.certs_dir / 'client.crt'))}",
            f"transport.tls.keyFile = {_toml(str(tunnel.certs_dir / 'client.key'))}",
            f"transport.tls.trustedCaFile = {_toml(str(tunnel.certs_dir / 'ca.crt'))}",
            f"transport.tls.serverName = {_toml(_SERVER_NAME)}",
        ]
    lines += [
        f"metadatas.token = {_toml(shared_key)}",
        "",
        "[[proxies]]",
        f"name = {_toml(tunnel.app_id)}",
        'type = "tcp"',
        f"remotePort = {tunnel.app_port}",
        "",
        "[proxies.plugin]",
        'type = "unix_domain_socket"',
        f"unixPath = {_toml(str(tunnel.app_socket))}",
    ]
    return "\n".join(lines) + "\n"


def frpc_config_path(layout: StorageLayout) -> Path:
    return layout.run_dir / "frpc.toml"


def prepare_tunnel(
    layout: StorageLayout, environ: Mapping[str, str] | None = None, certs_dir: Path = FRP_CERTS_DIR
) -> HarpTunnel | None:
    """Write frpc's config (0600 in the private run dir: it holds the shared key) when AppAPI asked for the tunnel;
    refuse to start without frpc, which is the only way in. None, and no file, without HP_SHARED_KEY."""
    path = frpc_config_path(layout)
    tunnel = harp_tunnel(environ, certs_dir)
    if tunnel is None:
        path.unlink(missing_ok=True)  # a key from an earlier deploy must not linger
        return None
    if frpc_binary(environ) is None:
        raise SettingsError(
            "HP_SHARED_KEY is set: AppAPI deployed this appliance behind HaRP, which reaches the app only through"
            " frpc, and frpc is not on PATH; use the Docker image (it ships frpc), install frp's frpc, or unset"
            " HP_SHARED_KEY when HaRP is not in front"
        )
    replace_file(path, frpc_config(tunnel, env_value("HP_SHARED_KEY", environ) or ""))
    return tunnel


def frpc_binary(environ: Mapping[str, str] | None = None) -> str | None:
    path = None if environ is None else environ.get("PATH")
    return shutil.which("frpc", path=path)
