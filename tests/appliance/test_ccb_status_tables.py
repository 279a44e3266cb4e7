"""`ccb status` and `ccb doctor` show a report's texts as written: file names, paths and errors are not read as rich
markup."""

from __future__ import annotations

from typing import Any

from appliance_kit import REPO
from rich.console import Console

from appliance.ccb import doctor_text
from appliance.ccb_status import render_status
from appliance.doctor import Check


def _report(failed_sources: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "documents": {"indexed": 3, "failed": len(failed_sources), "failed_sources": failed_sources},
        "chunks": {"embedded": 12, "queued": 0, "failed": 0, "failure_reasons": {}},
        "queue": {"depth": 0, "tokens": 0, "in_progress": 0},
        "throughput": {"chunks_per_s": 0.0, "window_s": 60},
        "loops": {"documents": {"state": "idle", "detail": "last batch: [2 files] indexed"}},
    }


def test_file_names_and_errors_with_brackets_are_shown_as_written() -> None:
    failed = [
        {"source_id": "files__default: 12", "error": "Offer [draft].pdf: the file is damaged"},
        {"source_id": "files__default: 13", "error": "Scan [/b].pdf: the file is damaged"},
    ]
    console = Console(record=True, width=200)
    # before: "[draft]" vanished as a style tag and "[/b]" raised rich's MarkupError
    console.print(render_status(_report(failed)))
    text = console.export_text()
    assert "Offer [draft].pdf: the file is damaged" in text
    assert "Scan [/b].pdf: the file is damaged" in text
    assert "idle: last batch: [2 files] indexed" in text


def test_a_doctor_check_with_brackets_is_printed_as_written() -> None:
    check = Check("disk", "fail", "1.2 GB free under /srv/[ccb]/data", "free space under [b]/srv[/b]")
    console = Console(record=True, width=200)
    # before: "[ccb]" vanished as a style tag and the fix's "[/b]"-style tags were read as markup
    console.print(doctor_text(check), highlight=False)
    assert (
        console.export_text()
        == "FAIL disk: 1.2 GB free under /srv/[ccb]/data\n       -> free space under [b]/srv[/b]\n"
    )


def test_an_embedder_program_that_keeps_exiting_is_named_with_its_log() -> None:
    """The worker only sees refused connections; why the program is down (a damaged model file, a busy port) is in
    its own log, which the embedding service line did not point at, though the Programs table said FATAL."""
    report = {
        **_report([]),
        "embedder": {
            "state": "unavailable",
            "unavailable_since": 1796320000.0,
            "last_error": "cannot reach the embedding service at http://127.0.0.1:5000/v1/embeddings: ConnectError",
            "failed_calls": 7,
            "next_try_in_s": None,
        },
    }
    shown: dict[str, str] = {}
    for state in ("BACKOFF", "FATAL", "RUNNING"):
        console = Console(record=True, width=400)
        console.print(render_status({**report, "programs": {"app": "RUNNING", "embedder": state}}))
        [line] = [line for line in console.export_text().splitlines() if line.startswith("embedding service")]
        shown[state] = line.rstrip()
    assert shown["BACKOFF"].endswith(
        "(7 failed calls); supervisord's program embedder keeps exiting at start (BACKOFF): `ccb logs embedder`"
        " says why"
    )
    assert shown["FATAL"].endswith(
        "(7 failed calls); supervisord's program embedder is FATAL: `ccb logs embedder` says why, then start it with"
        " `python -m appliance ctl start embedder`"
    )
    # running (an external embedder, a network problem): the error alone
    assert shown["RUNNING"].endswith("ConnectError; indexing waits (7 failed calls)")


def _hardware_rows(status_text: str) -> list[str]:
    """The row names of the Hardware table in `ccb status` text."""
    table = status_text.split("\nHardware\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in table.splitlines() if line.strip() and not line.startswith(" ")]


def test_the_readmes_status_example_shows_every_hardware_row_the_command_prints() -> None:
    """The quick start quotes `ccb status` on a machine without a GPU; it had no `cpus` row after one was added."""
    report = {
        **_report([]),
        "hardware": {"arch": "x86_64", "avx2": True, "cpus": 2, "cpu_limit": None, "device": "cpu"},
        "llm": {"backend": "extractive", "n_ctx": 4096},
    }
    console = Console(record=True, width=80)
    console.print(render_status(report))
    printed = "\n".join(line.rstrip() for line in console.export_text().splitlines())
    readme = (REPO / "README.md").read_text().split("\n$ ccb status\n", 1)[1].split("\n$ ", 1)[0]
    assert _hardware_rows(readme) == _hardware_rows(printed)
