"""`ccb index` against the real app server over a socket, on the folders users have: file names that are not
UTF-8, files that vanish between the walk and their upload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_app_kit import ccb_env, running_live_app
from rich.console import Console

from appliance.app_client import AppClient, AppTarget
from appliance.ccb_index import run_index
from appliance.local_sources import walk


@pytest.fixture
def app_base(tmp_path: Path, fresh_dsn: str, embedder_url: str) -> Iterator[str]:
    with running_live_app(tmp_path, fresh_dsn, embedder_url) as (base, _server):
        yield base


def ccb_json(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, Any, str]:
    """(exit code, the last stdout line as JSON, stderr) of the real `ccb` command."""
    command = [sys.executable, "-c", "import sys; from appliance.ccb import main; sys.exit(main())", *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=300)
    stdout, stderr = done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    assert stdout.strip(), stderr
    return done.returncode, json.loads(stdout.strip().splitlines()[-1]), stderr


def test_a_file_name_that_is_not_utf8_is_indexed_under_a_readable_title(app_base: str, tmp_path: Path) -> None:
    docs = tmp_path / "home" / "docs"
    docs.mkdir(parents=True)
    (docs / "plain.txt").write_text("The harbour crane is rented by the hour.")
    # a name written on a latin-1 system: the byte 0xE9 alone is no UTF-8
    (docs / os.fsdecode(b"caf\xe9.txt")).write_text("The cafe opens at seven in the morning.")
    code, report, stderr = ccb_json(
        "index", "docs", "--user", "me", "--json", cwd=docs.parent, env=ccb_env(app_base, tmp_path / "storage")
    )
    assert code == 0, stderr
    assert sorted(doc["title"] for doc in report["indexed"]) == [
        "docs/caf\N{REPLACEMENT CHARACTER}.txt",
        "docs/plain.txt",
    ]
    assert report["failed"] == [] and "Traceback" not in stderr


def test_a_file_gone_after_the_walk_is_reported_and_the_rest_is_indexed(app_base: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (docs / name).write_text(f"Note {name} about the harbour crane rental.")
    files = list(walk([docs]))
    # deleted while earlier batches were uploading, as a temp file in a Downloads folder is
    (docs / "b.txt").unlink()
    target = AppTarget.from_env(ccb_env(app_base, tmp_path / "storage"))
    with AppClient(target) as app:
        report = run_index(app, files, ["me"], Console(quiet=True), wait_s=60)
    assert sorted(file.title for file in report.indexed) == ["docs/a.txt", "docs/c.txt"]
    assert [(file.title, why) for file, why in report.failed] == [
        ("docs/b.txt", "cannot read it: No such file or directory")
    ]
    assert report.chunks_embedded == 2 and report.chunks_queued == 0
