"""A start without AppAPI (`make run` on a fresh machine): a local secret the app and `ccb` share, and an app that
is enabled, while a state AppAPI or an admin set is never overridden."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path
from typing import Any

from appliance.app_client import AppTarget
from appliance.app_secret import ensure_local_secret, read_app_secret
from appliance.launch import enable_standalone, launch_env_path, write_launch_env
from appliance.safe_fs import replace_file
from appliance.storage import StorageLayout
from quart_app.app_settings import AppSettings


def test_without_app_secret_one_is_generated_once_and_read_by_app_and_client(tmp_path: Path) -> None:
    layout = StorageLayout(tmp_path)
    environ = {"APP_PERSISTENT_STORAGE": str(tmp_path)}
    assert read_app_secret(layout, environ) == ""
    assert ensure_local_secret(layout, environ) is True
    secret = layout.secret_file.read_text().strip()
    assert len(secret) == 64 and stat.S_IMODE(layout.secret_file.stat().st_mode) == 0o600
    assert ensure_local_secret(layout, environ) is False and layout.secret_file.read_text().strip() == secret
    (tmp_path / "config.yaml").write_text("llm:\n  extractive: {}\n")
    assert AppSettings.from_env(environ).app_secret == secret
    assert AppTarget.from_env(environ).secret == secret
    # AppAPI's secret always wins, and none is written when it is set
    assert AppTarget.from_env({**environ, "APP_SECRET": "from-appapi"}).secret == "from-appapi"
    other = StorageLayout(tmp_path / "other")
    assert ensure_local_secret(other, {"APP_SECRET": "from-appapi"}) is False and not other.secret_file.exists()


def test_the_client_finds_the_address_prepare_recorded_unless_told_another(tmp_path: Path) -> None:
    layout = StorageLayout(tmp_path)
    layout.run_dir.mkdir()
    write_launch_env(launch_env_path(layout), {"CCB_APP_URL": "http://127.0.0.1:10099"})
    environ = {"APP_PERSISTENT_STORAGE": str(tmp_path)}
    assert AppTarget.from_env(environ).base_url == "http://127.0.0.1:10099"
    assert AppTarget.from_env({**environ, "APP_PORT": "10111"}).base_url == "http://127.0.0.1:10111"
    assert AppTarget.from_env({**environ, "APP_HOST": "::", "APP_PORT": "1"}).base_url == "http://[::1]:1"


def test_without_appapi_the_first_start_enables_the_app_and_keeps_a_later_choice(tmp_path: Path) -> None:
    layout = StorageLayout(tmp_path)
    assert enable_standalone(layout, {}) is True
    assert json.loads(layout.state_file.read_text()) == {"enabled": True}
    layout.state_file.write_text(json.dumps({"enabled": False}))
    assert enable_standalone(layout, {}) is False
    assert json.loads(layout.state_file.read_text()) == {"enabled": False}
    with_nextcloud = StorageLayout(tmp_path / "nc")
    assert enable_standalone(with_nextcloud, {"NEXTCLOUD_URL": "https://cloud.example.com"}) is False
    assert not with_nextcloud.state_file.exists()
    # AppAPI's start (or the manual install's) sets APP_SECRET: AppAPI enables the app after /init, as before
    with_appapi = StorageLayout(tmp_path / "appapi")
    assert enable_standalone(with_appapi, {"APP_SECRET": "from-appapi"}) is False
    assert not with_appapi.state_file.exists()


def _start_at_once(layout: StorageLayout, barrier: Any, results: Any) -> None:
    """One role's start-up writes to the shared storage: the secret, and the database URL every role writes."""
    barrier.wait()
    try:
        created = ensure_local_secret(layout, {"APP_PERSISTENT_STORAGE": str(layout.root)})
        replace_file(layout.db_url_file, "postgresql:///ccb\n")
        results.put((created, layout.secret_file.read_text().strip(), ""))
    except Exception as exc:
        results.put((False, "", f"{type(exc).__name__}: {exc}"))


def test_roles_starting_at_once_on_one_storage_share_one_secret(tmp_path: Path) -> None:
    """AppAPI's Kubernetes deploy starts every role's pod at once on one volume; before, they shared one temporary file
    name and one of them failed its start-up (FileNotFoundError at the rename, seen in CI)."""
    context = multiprocessing.get_context("fork")
    starts = 8
    for attempt in range(15):
        layout = StorageLayout(tmp_path / f"storage{attempt}")
        layout.root.mkdir()
        barrier, results = context.Barrier(starts), context.Queue()
        processes = [context.Process(target=_start_at_once, args=(layout, barrier, results)) for _ in range(starts)]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(60)
        assert [error for _, _, error in outcomes if error] == []
        assert sum(created for created, _, _ in outcomes) == 1
        assert {secret for _, secret, _ in outcomes} == {layout.secret_file.read_text().strip()}
        assert sorted(path.name for path in layout.root.iterdir()) == ["app_secret", "db_url"]  # no partial file left
