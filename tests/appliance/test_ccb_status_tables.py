"""`ccb status` and `ccb doctor` show a report's texts as written: file names, paths and errors are not read as rich
markup."""

from __future__ import annotations

from typing import Any

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
