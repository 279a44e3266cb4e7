"""A storage the appliance cannot write ends `prepare` with what to set, not a traceback."""

from __future__ import annotations

import logging
import resource
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from appliance_kit import PYTHON, REPO, clean_env, run_cli

from appliance.cli_logging import APPLIANCE_LOG, add_appliance_log
from appliance.storage import StorageLayout


def test_a_log_file_that_cannot_be_opened_is_skipped(tmp_path: Path) -> None:
    layout = StorageLayout(tmp_path)
    (layout.log_dir / APPLIANCE_LOG).mkdir(parents=True)  # root may write anywhere: a directory stops even root
    handlers = list(logging.getLogger().handlers)
    add_appliance_log(layout, "info")
    assert logging.getLogger().handlers == handlers


@pytest.fixture
def read_only_storage(private_dir: Path) -> Iterator[Path]:
    """A storage whose directories all exist (an earlier start made them), bind-mounted read-only."""
    made = StorageLayout(private_dir / "made")
    for path in (made.model_dir, made.vector_db_dir, made.log_dir, made.spool_dir, made.run_dir):
        path.mkdir(parents=True)
    mount_point = private_dir / "read-only"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(made.root), str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here: {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_prepare_on_a_read_only_storage_says_to_set_a_writable_one(read_only_storage: Path) -> None:
    result = run_cli("prepare", env=clean_env(read_only_storage))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot take over {read_only_storage}/run: Read-only file system; set APP_PERSISTENT_STORAGE to a"
        " writable directory"
    )


def _file_size_limit(limit_bytes: int) -> Callable[[], None]:
    """A full disk for one process: writes past `limit_bytes` fail with EFBIG (SIGXFSZ ignored, as ENOSPC would)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_a_full_disk_during_prepare_leaves_no_partial_files_behind(private_dir: Path) -> None:
    env = clean_env(private_dir, APP_VERSION="4.0.0")
    command = [PYTHON, "-m", "appliance", "prepare"]
    full = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, preexec_fn=_file_size_limit(300)
    )
    assert full.returncode == 1
    assert "cannot write the config file: File too large" in full.stderr
    # space freed: the next start completes, and nothing the failed one began writing is left
    run_cli("prepare", env=env).check_returncode()
    assert [path.name for path in private_dir.rglob("*.tmp")] == []
