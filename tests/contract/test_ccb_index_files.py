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
from local_ports import free_port
from rich.console import Console

from appliance.app_client import AppClient, AppTarget
from appliance.ccb_index import run_index
from appliance.local_sources import walk


@pytest.fixture
def app_base(tmp_path: Path, fresh_dsn: str, embedder_url: str) -> Iterator[str]:
    with running_live_app(tmp_path, fresh_dsn, embedder_url) as (base, _server):
        yield base


def ccb_run(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the real `ccb` command, run as an admin's account reads files: under root
    without the capabilities that ignore file modes."""
    command = [sys.executable, "-c", "import sys; from appliance.ccb import main; sys.exit(main())", *args]
    if os.geteuid() == 0:
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=300)
    return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


def ccb_json(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, Any, str]:
    """(exit code, the last stdout line as JSON, stderr) of the real `ccb` command."""
    code, stdout, stderr = ccb_run(*args, cwd=cwd, env=env)
    assert stdout.strip(), stderr
    return code, json.loads(stdout.strip().splitlines()[-1]), stderr


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


def test_a_folder_that_cannot_be_listed_is_named_counted_and_fails_the_run(app_base: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "private").mkdir(parents=True)
    (docs / "notes.txt").write_text("The harbour crane is rented by the hour.")
    (docs / "private" / "salary.txt").write_text("The salary review is in March.")
    # a folder of another account, or one a backup tool left without permissions
    (docs / "private").chmod(0)
    env = ccb_env(app_base, tmp_path / "storage")
    try:
        code, report, stderr = ccb_json("index", "docs", "--user", "me", "--json", cwd=tmp_path, env=env)
        text_code, text, _ = ccb_run("index", "docs", "--user", "me", cwd=tmp_path, env=env)
    finally:
        (docs / "private").chmod(0o755)
    assert code == 1, stderr
    assert [doc["title"] for doc in report["indexed"]] == ["docs/notes.txt"]
    assert report["unread_folders"] == [{"path": "docs/private", "reason": "Permission denied"}]
    assert text_code == 1
    assert "; folders not read: 1" in text and "  docs/private: Permission denied" in text


def test_ccb_delete_of_a_folder_with_a_subfolder_it_cannot_list_deletes_nothing(app_base: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "private").mkdir(parents=True)
    (docs / "notes.txt").write_text("The harbour crane is rented by the hour.")
    (docs / "private" / "salary.txt").write_text("The salary review is in March.")
    env = ccb_env(app_base, tmp_path / "storage")
    code, _report, stderr = ccb_json("index", "docs", "--user", "me", "--json", cwd=tmp_path, env=env)
    assert code == 0, stderr
    (docs / "private").chmod(0)
    try:
        code, answer, stderr = ccb_json("delete", "docs", "--json", cwd=tmp_path, env=env)
    finally:
        (docs / "private").chmod(0o755)
    # before: docs/notes.txt alone was deleted and the salary file stayed indexed without a word
    assert code == 2, stderr
    assert answer["error"] == (
        "cannot list docs/private: Permission denied; nothing was deleted: make it readable, or give its files'"
        " --source ids"
    )
    _code, hits, _ = ccb_json("search", "harbour crane", "--user", "me", "--json", cwd=tmp_path, env=env)
    assert sorted(hit["title"] for hit in hits) == ["docs/notes.txt", "docs/private/salary.txt"]


def test_chunks_waiting_for_an_unavailable_embedding_service_say_why(
    tmp_path: Path, fresh_dsn: str, embedder_url: str
) -> None:
    """With the embedder stopped, `ccb index` showed a bar standing at 0 until its timeout and ended with 'N still
    queued' and nothing about why: the app knows (GET /status's `embedder`), so the wait and the summary say it. It
    also exited 0, so a script could not tell the run from a finished one: the timeout is exit code 6."""
    dead_embedder = f"http://127.0.0.1:{free_port()}/v1"
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "budget.md").write_text("The Berlin office travel budget for 2025 is 12000 euros.\n")
    with running_live_app(tmp_path, fresh_dsn, embedder_url, embedding={"base_url": dead_embedder, "workers": 1}) as (
        base,
        _server,
    ):
        code, stdout, stderr = ccb_run(
            "index",
            str(folder),
            "--user",
            "alice",
            "--timeout",
            "8",
            cwd=tmp_path,
            env={**ccb_env(base, tmp_path / "storage"), "COLUMNS": "300"},
        )
    assert code == 6, stderr
    reason = f"cannot reach the embedding service at {dead_embedder}/embeddings"
    assert "embedding service unavailable since" in stderr and reason in stderr, stderr
    summary = stdout.splitlines()
    assert summary[0].endswith("0 embedded, 0 failed, 1 still queued"), stdout
    assert summary[1].startswith(
        f"the queued chunks wait for the embedding service, which the app finds unavailable: {reason}"
    )
