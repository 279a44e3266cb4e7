"""HaRP: with HP_SHARED_KEY from AppAPI, `prepare` writes frpc's config and supervisord starts frpc; without it,
nothing of the tunnel exists. frpc itself is not installed here (no registry this machine reaches ships it), so
these tests stop at its config file, the launch env and supervisord's program line."""

from __future__ import annotations

import configparser
import shlex
import stat
import tomllib
from pathlib import Path

import pytest
from appliance_kit import REPO, clean_env, run_cli, write_config
from local_ports import free_port

from appliance.errors import SettingsError
from appliance.harp_tunnel import frpc_config_path, harp_tunnel, prepare_tunnel
from appliance.launch import launch_env_path, read_launch_env
from appliance.storage import StorageLayout

# quotes and a backslash: the key must reach frpc's TOML unchanged
SHARED_KEY = 'harp "key" \\ 0123456789'
HARP = {"HP_SHARED_KEY": SHARED_KEY, "HP_FRP_ADDRESS": "appapi-harp", "HP_FRP_PORT": "8782"}
APP = {"APP_ID": "context_chat_backend", "APP_HOST": "0.0.0.0", "APP_PORT": "23001"}


def _frpc_on_path(tmp_path: Path) -> str:
    """A directory with an executable named frpc: only its presence is checked, it is never run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    frpc = bin_dir / "frpc"
    frpc.write_text("#!/bin/sh\nexit 1\n")
    frpc.chmod(0o755)
    return str(bin_dir)


def _layout(tmp_path: Path) -> StorageLayout:
    layout = StorageLayout(tmp_path / "storage")
    layout.ensure()
    return layout


def _certs(tmp_path: Path, names: tuple[str, ...] = ("client.crt", "client.key", "ca.crt")) -> Path:
    certs = tmp_path / "certs" / "frp"
    certs.mkdir(parents=True)
    for name in names:
        (certs / name).write_text("-----BEGIN-----\n")
    return certs


def test_without_the_shared_key_there_is_no_tunnel_and_an_old_config_goes(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    stale = frpc_config_path(layout)
    stale.write_text('metadatas.token = "old key"\n')
    assert harp_tunnel({**APP}) is None
    assert prepare_tunnel(layout, {**APP, "PATH": _frpc_on_path(tmp_path)}) is None
    assert not stale.exists()


def test_frpc_logs_in_with_the_key_and_carries_app_port_to_the_app(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    environ = {**HARP, **APP, "PATH": _frpc_on_path(tmp_path)}
    tunnel = prepare_tunnel(layout, environ, certs_dir=tmp_path / "no-certs")
    assert tunnel is not None
    path = frpc_config_path(layout)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the shared key
    config = tomllib.loads(path.read_text())
    assert config == {
        "serverAddr": "appapi-harp",
        "serverPort": 8782,
        "loginFailExit": False,
        "log": {"disablePrintColor": True},
        "transport": {"tls": {"enable": False}},
        "metadatas": {"token": SHARED_KEY},
        # HaRP's HAProxy finds the app at APP_PORT on its side, frpc carries it to the app's socket
        "proxies": [
            {
                "name": "context_chat_backend",
                "type": "tcp",
                "remotePort": 23001,
                "plugin": {"type": "unix_domain_socket", "unixPath": "/tmp/exapp.sock"},
            }
        ],
    }
    assert tunnel.describe() == (
        "the app's socket /tmp/exapp.sock as port 23001 of appapi-harp:8782 (no TLS: HaRP gave no certificates)"
    )


def test_the_certificates_harp_copied_in_turn_tls_on(tmp_path: Path) -> None:
    certs = _certs(tmp_path)
    tunnel = harp_tunnel({**HARP, **APP, "HP_EXAPP_SOCK": "/run/ccb/app.sock"}, certs_dir=certs)
    assert tunnel is not None and tunnel.app_socket == Path("/run/ccb/app.sock")
    layout = _layout(tmp_path)
    prepare_tunnel(layout, {**HARP, **APP, "PATH": _frpc_on_path(tmp_path)}, certs_dir=certs)
    tls = tomllib.loads(frpc_config_path(layout).read_text())["transport"]["tls"]
    assert tls == {
        "enable": True,
        "certFile": str(certs / "client.crt"),
        "keyFile": str(certs / "client.key"),
        "trustedCaFile": str(certs / "ca.crt"),
        "serverName": "harp.nc",
    }


def test_an_incomplete_certificate_set_is_not_used(tmp_path: Path) -> None:
    tunnel = harp_tunnel({**HARP, **APP}, certs_dir=_certs(tmp_path, ("client.crt", "ca.crt")))
    assert tunnel is not None and tunnel.certs_dir is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"HP_FRP_ADDRESS": ""}, "but HP_FRP_ADDRESS is not: set HP_FRP_ADDRESS and HP_FRP_PORT"),
        ({"HP_FRP_ADDRESS": "", "HP_FRP_PORT": ""}, "but HP_FRP_ADDRESS and HP_FRP_PORT are not"),
        ({"HP_FRP_PORT": "eighty"}, "HP_FRP_PORT='eighty' is not an integer"),
        ({"HP_FRP_PORT": "70000"}, "HP_FRP_PORT=70000 is not a TCP port (1-65535)"),
    ],
    ids=["no-address", "neither", "port-not-a-number", "port-out-of-range"],
)
def test_a_half_set_harp_environment_is_refused_with_what_to_set(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        harp_tunnel({**HARP, **APP, **change})
    assert message in str(error.value)
    assert SHARED_KEY not in str(error.value)


def test_without_frpc_the_appliance_refuses_to_start_and_writes_no_key(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    with pytest.raises(SettingsError, match="frpc is not on PATH") as error:
        prepare_tunnel(layout, {**HARP, **APP, "PATH": str(tmp_path / "empty")})
    assert "HP_SHARED_KEY is set" in str(error.value)
    assert not frpc_config_path(layout).exists()


def test_prepare_starts_frpc_under_supervisord_and_keeps_the_key_out_of_its_environment(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    write_config(storage)
    bin_dir = _frpc_on_path(tmp_path)
    port = str(free_port())
    env = clean_env(storage, **HARP, APP_ID="context_chat_backend", APP_PORT=port, APP_SECRET="app-secret-value")
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    result = run_cli("prepare", env=env)
    assert result.returncode == 0, result.stderr
    assert f"HaRP: frpc carries the app's socket /tmp/exapp.sock as port {port} of appapi-harp:8782" in result.stderr
    assert SHARED_KEY not in result.stderr + result.stdout
    launch_file = launch_env_path(StorageLayout(storage))
    assert SHARED_KEY not in launch_file.read_text()  # every program reads launch.env; only frpc needs the key
    launch = read_launch_env(launch_file)
    assert launch["CCB_FRPC_AUTOSTART"] == "true"
    # hypercorn binds the socket, not APP_PORT, which HaRP may hold on a host network's loopback
    assert (launch["CCB_APP_BIND"], launch["CCB_APP_SOCKET"]) == ("unix:/tmp/exapp.sock", "/tmp/exapp.sock")
    assert launch["CCB_FRPC"] == f"{bin_dir}/frpc"
    assert launch["CCB_FRPC_CONFIG"] == str(frpc_config_path(StorageLayout(storage)))
    frpc_env = dict(word.split("=", 1) for word in shlex.split(launch["CCB_FRPC_ENV"]))
    assert frpc_env["PATH"] == env["PATH"]
    assert not {"HP_SHARED_KEY", "APP_SECRET", "HP_FRP_ADDRESS"} & set(frpc_env)
    conf = configparser.RawConfigParser()
    conf.read(REPO / "supervisord.conf")
    frpc = conf["program:frpc"]
    assert frpc["command"] == (
        "/usr/bin/setpriv --pdeathsig TERM"
        " /usr/bin/env -i %(ENV_CCB_FRPC_ENV)s %(ENV_CCB_FRPC)s -c %(ENV_CCB_FRPC_CONFIG)s"
    )
    assert frpc["autostart"] == "%(ENV_CCB_FRPC_AUTOSTART)s"
    # started after the app, stopped before it: no request from HaRP arrives while the app shuts down
    assert int(frpc["priority"]) > int(conf["program:app"]["priority"])


def test_prepare_without_harp_leaves_frpc_off(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    write_config(storage)
    result = run_cli("prepare", env=clean_env(storage))
    assert result.returncode == 0, result.stderr
    launch = read_launch_env(launch_env_path(StorageLayout(storage)))
    assert launch["CCB_FRPC_AUTOSTART"] == "false"
    assert (launch["CCB_APP_BIND"], launch["CCB_APP_SOCKET"]) == ("127.0.0.1:10034", "")
    assert not frpc_config_path(StorageLayout(storage)).exists()
