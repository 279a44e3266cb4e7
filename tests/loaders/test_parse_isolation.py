"""A parse worker holds untrusted files: it runs as the parser user, without the app's secrets, reaches no file of
the app's, cannot lift its memory cap, and nothing it sends can run code in the app."""

import json
import logging
import os
import pwd
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from faulty_loaders import FAULTY_LOADERS
from pool_kit import text_of

from appliance.storage import StorageLayout
from quart_app.chunking import ChunkerSpec
from quart_app.loaders import CorruptDocumentError, ParseLimits, ParsePool
from quart_app.loaders.worker_identity import INHERITED_VARIABLES, parser_identity
from quart_app.services.source_spool import SourceSpool, SpooledFile

SECRETS = {
    "APP_SECRET": "app-secret-d41d8cd98f00b204",
    "EXTERNAL_DB": "postgresql://ccb:db-passw0rd-e9800998@db.internal/ccb",
    "CC_EM_APIKEY": "sk-embedding-key-5f4dcc3b5aa7",
}
LIMITS = ParseLimits(timeout_s=30.0, memory_mb=256)


@pytest.fixture
def app_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's environment as the appliance sets it: secrets included."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def spec(chunker_spec: ChunkerSpec) -> ChunkerSpec:
    """Chunks large enough that a probe's JSON report is one chunk."""
    return ChunkerSpec(chunker_spec.tokenizer_file, 4000, 0)


@pytest.fixture
async def pool(app_environment: None, spec: ChunkerSpec) -> AsyncIterator[ParsePool]:
    """Two workers, so one can look for the other's descriptors."""
    async with ParsePool(2, LIMITS, chunker=spec, extra_loaders=FAULTY_LOADERS) as parse_pool:
        yield parse_pool


def _spool(spool: SourceSpool, content: bytes) -> SpooledFile:
    writer = spool.open("upload")
    writer.write(content)
    return writer.finish()


def _initial_environment(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().decode()


async def test_worker_runs_as_the_parser_user_without_secrets_or_a_way_to_the_apps_files(
    parser_user: pwd.struct_passwd | None, pool: ParsePool, tmp_path: Path
) -> None:
    if parser_user is None:
        pytest.skip("switching the parse workers to another user needs root")
    layout = StorageLayout(tmp_path / "storage")
    layout.ensure()
    layout.config_file.write_text(f"app_secret: {SECRETS['APP_SECRET']}\n", encoding="utf-8")
    log = layout.log_dir / "app.log"
    log.write_text("a log line about another user's file\n", encoding="utf-8")
    for private in (layout.config_file, log):
        private.chmod(0o600)
    spool = SourceSpool(layout.spool_dir, 1024 * 1024)
    other = _spool(spool, b"another user's document")
    targets = [str(layout.config_file), str(log), str(other.path), "/etc/passwd"]
    probe = _spool(spool, json.dumps(targets).encode())

    report = json.loads(text_of(await pool.parse_and_chunk(probe.path, "test/escape")))
    # read by root while the worker lives: the environment it was exec'd with, in its initial stack
    exec_environ = _initial_environment(report["pid"])

    assert report["ids"] == [parser_user.pw_uid] * 2 + [parser_user.pw_gid] * 2
    assert report["groups"] == []
    assert set(report["environ"]) <= {*INHERITED_VARIABLES, "PYTHONPATH"}
    for secret in SECRETS.values():
        assert secret not in exec_environ and secret not in json.dumps(report["environ"])
    assert report["reads"] == {
        str(layout.config_file): "PermissionError",
        str(log): "PermissionError",
        str(other.path): "PermissionError",
        "/etc/passwd": "read",  # the probe can read what any user can: the refusals above are real
        "/proc/self/environ": "PermissionError",
    }
    # the other worker runs as the same user, but its descriptors (the file it parses) are out of reach
    assert report["fd_dirs_of_others"] == []
    assert report["lift_memory_cap"] == "ValueError"
    # the file was the worker's only while it was parsed
    assert probe.path.stat().st_uid == 0


async def test_without_the_parser_user_workers_keep_the_apps_user_say_so_once_and_still_lose_the_secrets(
    app_environment: None, spec: ChunkerSpec, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    probe = tmp_path / "probe"
    probe.write_text("[]", encoding="utf-8")
    caplog.set_level(logging.INFO, logger="quart_app.loaders")
    async with ParsePool(2, LIMITS, chunker=spec, os_user="ccb_no_such_user", extra_loaders=FAULTY_LOADERS) as pool:
        report = json.loads(text_of(await pool.parse_and_chunk(probe, "test/escape")))
    notes = [r.getMessage() for r in caplog.records if "ccb_no_such_user" in r.getMessage()]
    if report["ids"][0] == 0:
        assert notes == [
            "the OS user ccb_no_such_user does not exist, so parse workers run as root and a malicious file could "
            "reach the app's files; create it (useradd --system --no-create-home ccb_no_such_user)"
        ]
    else:
        assert len(notes) == 1 and notes[0].startswith("parse workers run as the app's own user")
    for secret in SECRETS.values():
        assert secret not in json.dumps(report["environ"])


@pytest.mark.parametrize(
    ("forgery", "reason"),
    [("pickle", "not a JSON message"), ("huge", "bad message length")],
)
async def test_a_forged_reply_runs_nothing_in_the_app_and_costs_only_its_file(
    pool: ParsePool, tmp_path: Path, forgery: str, reason: str
) -> None:
    marker = Path("/tmp") / f"ccb-forged-reply-{tmp_path.name}"
    forged = tmp_path / "forged"
    forged.write_text(f"{forgery} {marker}", encoding="utf-8")
    plain = tmp_path / "plain"
    plain.write_text("An ordinary document.", encoding="utf-8")
    with pytest.raises(CorruptDocumentError) as info:
        await pool.parse_and_chunk(forged, "test/forge-reply")
    assert str(info.value).startswith(f"forged (test/forge-reply): the parser misbehaved on this file ({reason}")
    assert not marker.exists(), "the app unpickled what a parse worker sent"
    # the worker was replaced and the pool goes on
    assert text_of(await pool.parse_and_chunk(plain, "text/plain")) == "An ordinary document."


def test_a_regular_user_app_keeps_its_user_for_the_workers_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    caplog.set_level(logging.INFO, logger="quart_app.loaders")
    assert parser_identity() is None
    assert [r.getMessage() for r in caplog.records] == [
        "parse workers run as the app's own user (uid 1000): only root can switch them to ccb_parser"
    ]
