"""APP_PORT outside 1-65535 is refused by `prepare`; a port the app cannot bind ends it with what to change."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from appliance_kit import PYTHON, REPO, clean_env, run_cli


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_prepare_refuses_a_port_outside_the_tcp_range_before_writing_anything(private_dir: Path, port: str) -> None:
    storage = private_dir / "storage"
    result = run_cli("prepare", env=clean_env(storage, APP_PORT=port))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: APP_PORT={port} is not a TCP port (1-65535); set it to a free port such as 10034"
    )
    assert sorted(path.name for path in storage.iterdir()) == ["logs"]  # the CLI's own log, nothing prepared


def _serve(bind: str) -> subprocess.CompletedProcess[str]:
    command = [PYTHON, "-m", "quart_app.app_server", "--bind", bind]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_the_app_on_a_busy_port_names_it_and_the_setting_to_change() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _serve(f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"app: cannot listen on 127.0.0.1:{port}: Address already in use (another program uses it, perhaps another"
        " appliance on this machine); set APP_PORT to a free port"
    )


def test_the_app_on_a_port_beyond_65535_names_the_setting_to_change() -> None:
    result = _serve("127.0.0.1:70000")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "app: cannot listen on 127.0.0.1:70000: bind(): port must be 0-65535; set APP_PORT to a free port"
    )
