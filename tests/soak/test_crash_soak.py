"""Crash soak: the PHP app indexes 500 documents into the whole appliance under supervisord while the app, the
embedder, a parse worker and PostgreSQL are killed with SIGKILL in turn. Figures go to bench/results/crash.txt.

    CCB_SOAK=1 .venv/bin/pytest tests/soak/test_crash_soak.py -s
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_scenario import KILLABLE, CrashRun, run_crash_scenario

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = 500


@pytest.fixture(scope="module")
def crash_run() -> Iterator[CrashRun]:
    root = Path(tempfile.mkdtemp(prefix="ccb-soak-", dir="/tmp"))
    try:
        run = run_crash_scenario(root, count=DOCUMENTS, kills=KILLABLE)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report = f"{time.strftime('%Y-%m-%d %H:%M')} tests/soak/test_crash_soak.py, {os.cpu_count()} CPUs, " + (
        f"load average {os.getloadavg()[0]:.2f}\n{run.summary()}\n"
    )
    print(report)
    (REPO / "bench" / "results" / "crash.txt").write_text(report)
    yield run


def test_every_acknowledged_document_is_stored_once_whole_and_embedded(crash_run: CrashRun) -> None:
    assert crash_run.problems == []
    assert crash_run.spool_left == []


def test_every_kill_was_survived_without_manual_action(crash_run: CrashRun) -> None:
    assert [kill.target for kill in crash_run.kills] == list(KILLABLE)
    assert crash_run.not_restarted() == []
    assert crash_run.orphans == []


def test_nothing_sent_was_lost(crash_run: CrashRun) -> None:
    """The file a killed parse worker held is parsed again in another worker, not failed."""
    sent = {document.source_id for document in crash_run.documents}
    assert crash_run.tally.refused == {}
    assert crash_run.tally.dropped == set()
    assert crash_run.failed_rows == {}
    assert crash_run.tally.acknowledged == sent
