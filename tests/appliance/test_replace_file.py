"""replace_file: the one atomic write of a whole file (temp file of this process beside it, fsync, rename)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.safe_fs import replace_file


def test_the_new_text_is_on_disk_before_it_takes_the_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "launch.env"
    target.write_text("OLD=1\n")
    steps: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append(f"fsync {Path(f'/proc/self/fd/{fd}').resolve().name}")
        real_fsync(fd)

    def replace(source: str | Path, destination: str | Path) -> None:
        steps.append(f"rename {Path(source).name} -> {Path(destination).name}")
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    replace_file(target, "NEW=1\n")
    partial = f"launch.env.{os.getpid()}.tmp"
    assert steps == [f"fsync {partial}", f"rename {partial} -> launch.env"]
    assert target.read_text() == "NEW=1\n"


def test_bytes_are_written_as_given_and_text_as_utf8(tmp_path: Path) -> None:
    replace_file(tmp_path / "blob", b"\x00\xff", mode=0o644)
    replace_file(tmp_path / "text", "caf\u00e9")
    assert (tmp_path / "blob").read_bytes() == b"\x00\xff"
    assert (tmp_path / "text").read_bytes() == b"caf\xc3\xa9"
    assert (tmp_path / "blob").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "text").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob", "text"]


def test_a_link_planted_at_the_temp_name_is_removed_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    target = tmp_path / "db_url"
    target.with_name(f"db_url.{os.getpid()}.tmp").symlink_to(victim)
    replace_file(target, "postgresql:///ccb\n")
    assert victim.read_text() == "keep me\n"
    assert not target.is_symlink() and target.read_text() == "postgresql:///ccb\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db_url", "victim"]


def test_the_mode_asked_for_is_kept_whatever_the_umask(tmp_path: Path) -> None:
    restrictive = os.umask(0o077)
    try:
        replace_file(tmp_path / "version.info", "4.0.0\n", mode=0o644)
    finally:
        os.umask(restrictive)
    assert (tmp_path / "version.info").stat().st_mode & 0o777 == 0o644
