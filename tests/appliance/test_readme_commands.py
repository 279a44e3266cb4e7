"""Commands the README quotes print what the README shows (the cheap ones, run here)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from appliance_kit import REPO, clean_env, run_cli
from click.testing import CliRunner

from appliance.ccb import cli

README: str = (REPO / "README.md").read_text()
README_STORAGE = "/tmp/ccb-readme/storage"
README_NO_GPU = "no GPU found (NVML unavailable: NVML Shared Library Not Found)"
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def _quoted_block(after: str) -> str:
    """The first fenced block after the line `after` in the README."""
    return README.split(f"\n{after}\n", 1)[1].split("```\n", 1)[1].split("```", 1)[0]


def test_the_entrypoint_usage_is_quoted_whole() -> None:
    result = subprocess.run([str(REPO / "entrypoint.sh"), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert _quoted_block("## Entrypoint flags") == result.stdout


def test_a_first_starts_prepare_lines_are_quoted_as_printed(tmp_path: Path) -> None:
    """`make run`'s first start in the README, up to supervisord: what `prepare` logs and prints on a new storage."""
    storage = tmp_path / "storage"
    result = run_cli("prepare", env=clean_env(storage, APP_PORT="10099"))
    assert result.returncode == 0, result.stderr
    # the log lines (stderr), then the summary (stdout)
    printed = [_TIMESTAMP.sub("", line) for line in (result.stderr + result.stdout).splitlines()]
    reason = re.search(r"compute device cpu \(config cpu\): (.*)$", "\n".join(printed), re.MULTILINE)
    if reason is None:
        pytest.skip("this machine has a GPU; the README's run had none")
    block = _quoted_block(
        f"Real output of `APP_PERSISTENT_STORAGE={README_STORAGE} APP_PORT=10099 make run`, first start, then SIGTERM:"
    )
    lines = block.split("./entrypoint.sh\n", 1)[1].splitlines()
    quoted = lines[: next(i for i, line in enumerate(lines) if line.startswith("prepared ")) + 1]
    # the probe's reason for "no GPU" is this machine's NVML message
    expected = [_TIMESTAMP.sub("", line).replace(README_NO_GPU, reason.group(1)) for line in quoted]
    assert [line.replace(str(storage), README_STORAGE) for line in printed] == expected


def test_the_readme_lists_every_exit_code_ccb_documents() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    documented = re.findall(r"^ {4}(\d)  ", result.output.split("Exit codes", 1)[1], re.MULTILINE)
    paragraph = " ".join(
        README.split("\nEvery command but `ccb logs` takes `--json`", 1)[1].split("\n\n", 1)[0].split()
    )
    listed = re.findall(r"(?:codes: |· )(\d) ", paragraph)
    assert documented and listed == documented
