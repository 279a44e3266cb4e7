"""run/ (launch.env, supervisord's pid file and socket) is root's alone: taken back from the PostgreSQL user."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from appliance_kit import clean_env, root_owned_victim, run_as, run_cli, untouched, write_config

from appliance.launch import launch_env_path, write_launch_env
from appliance.os_users import POSTGRES_USER, ensure_system_user
from appliance.storage import StorageLayout

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: plants links as the PostgreSQL OS user")


def test_prepare_takes_run_back_from_the_postgres_user_and_its_links_lead_nowhere(private_dir: Path) -> None:
    layout = StorageLayout(private_dir / "storage")
    write_config(layout.root)
    private_dir.chmod(0o711)
    # up to this version run/ was also PostgreSQL's socket dir, owned by its OS user
    postgres = ensure_system_user(POSTGRES_USER)
    layout.run_dir.mkdir(mode=0o700)
    os.chown(layout.run_dir, postgres.pw_uid, postgres.pw_gid)
    victims = {}
    for name in ("launch.env.tmp", "launch.env", "supervisord.pid"):
        victims[name] = root_owned_victim(private_dir, f"victim-{name}")
        planted = run_as(POSTGRES_USER.name, "ln", "-s", str(victims[name]), str(layout.run_dir / name))
        assert planted.returncode == 0, planted.stderr

    result = run_cli("prepare", env=clean_env(layout.root))
    assert result.returncode == 0, result.stderr
    assert [name for name, victim in victims.items() if not untouched(victim)] == []
    info = layout.run_dir.lstat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o700)
    assert sorted(path.name for path in layout.run_dir.iterdir()) == ["appliance.pid", "launch.env"]
    launch_env = (layout.run_dir / "launch.env").lstat()
    assert stat.S_ISREG(launch_env.st_mode) and (launch_env.st_uid, stat.S_IMODE(launch_env.st_mode)) == (0, 0o600)
    # and it cannot plant anything there again
    again = run_as(POSTGRES_USER.name, "ln", "-s", str(victims["supervisord.pid"]), str(layout.run_dir / "x.pid"))
    assert again.returncode != 0 and "Permission denied" in again.stderr
    # PostgreSQL's socket moved to a dir of its own
    assert layout.pg_socket_dir != layout.run_dir


def test_a_link_at_the_launch_env_names_is_replaced_not_followed(private_dir: Path) -> None:
    layout = StorageLayout(private_dir / "storage")
    layout.ensure()
    victims = [root_owned_victim(private_dir, f"victim{index}") for index in range(2)]
    target = launch_env_path(layout)
    target.with_name(f"launch.env.{os.getpid()}.tmp").symlink_to(victims[0])  # the temp name of this process
    target.symlink_to(victims[1])
    write_launch_env(target, {"CCB_LOG_DIR": str(layout.log_dir)})
    assert untouched(victims[0]) and untouched(victims[1])
    assert not target.is_symlink() and f"CCB_LOG_DIR={layout.log_dir}" in target.read_text()
