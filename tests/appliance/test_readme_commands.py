"""Commands the README quotes print what the README shows (the cheap ones, run here)."""

from __future__ import annotations

import subprocess

from appliance_kit import REPO

README = (REPO / "README.md").read_text()


def _quoted_block(after: str) -> str:
    """The first fenced block after the line `after` in the README."""
    return README.split(f"\n{after}\n", 1)[1].split("```\n", 1)[1].split("```", 1)[0]


def test_the_entrypoint_usage_is_quoted_whole() -> None:
    result = subprocess.run([str(REPO / "entrypoint.sh"), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert _quoted_block("## Entrypoint flags") == result.stdout
