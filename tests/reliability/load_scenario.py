"""The load scenario: the whole appliance, a preloaded corpus, N clients for a while, a heartbeat prober beside them;
the figures printed and written to a results file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from appliance_kit import wait_for
from appliance_stack import ApplianceStack, shipped_config
from index_checks import queue_left
from load_clients import LoadFigures, run_load
from local_ports import free_port
from php_indexer import PhpIndexer, corpus

PROBER = Path(__file__).resolve().parent / "heartbeat_prober.py"
PROBE_INTERVAL_S = 0.1


def run_load_scenario(
    root: Path, clients: int, duration_s: float, preload: int, results: Path, title: str
) -> LoadFigures:
    """Start the appliance, index and embed `preload` documents, then load it for `duration_s`; write the figures."""
    stack = ApplianceStack(root, shipped_config(free_port()))
    try:
        stack.wait_healthy()
        stack.enable()
        indexer = PhpIndexer(stack.base_url, corpus(preload, max_paragraphs=3))
        indexer.start()
        indexer.join(timeout=600)
        # the clients' own uploads then are the only embedding work beside them
        wait_for(lambda: queue_left(stack.query) == 0, 900, "the preloaded documents to be embedded", interval=1.0)
        load_before = os.getloadavg()[0]
        prober_out = root / "heartbeat.json"
        prober = subprocess.Popen(
            [sys.executable, str(PROBER), stack.base_url, str(PROBE_INTERVAL_S), str(duration_s), str(prober_out)]
        )
        started = time.monotonic()
        samples = asyncio.run(run_load(stack.base_url, clients, duration_s))
        elapsed = time.monotonic() - started
        prober.wait(duration_s + 120)
        probes = json.loads(prober_out.read_text())
    finally:
        stack.stop()
    figures = LoadFigures(samples, probes["latencies_ms"], probes["failures"], elapsed)
    header = (
        f"{time.strftime('%Y-%m-%d %H:%M')} {title}\n"
        f"{clients} clients for {duration_s:.0f} s ({elapsed:.0f} s with the last answers) over loopback against the "
        "whole appliance (entrypoint.sh, shipped CPU config, llm: extractive), "
        f"{preload} documents preloaded; {os.cpu_count()} CPUs, load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after\n"
    )
    footer = (
        f"\n5xx answers: {len(figures.server_errors)}, requests without an answer: {len(figures.unanswered)}, "
        f"heartbeat failures: {len(figures.heartbeat_failures)}\n"
    )
    report = header + figures.table() + footer
    print(report)
    results.write_text(report)
    return figures
