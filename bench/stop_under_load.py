"""How long the whole appliance takes to stop while it indexes and answers, against Docker's 10 s.

    .venv/bin/python bench/stop_under_load.py [--runs 3] [--clients 6] [--after 5,10,15] [--llm llama|extractive]

Starts the appliance as `make run` does (entrypoint.sh -> supervisord -> PostgreSQL, embedder, app) on a temp
storage with the shipped CPU config and `--llm` (llama: the SmolLM2 GGUF, 512 tokens per answer), enables it, and
runs the load clients of tests/reliability (uploads, questions, searches) until, `--after` seconds in, SIGTERM goes to
entrypoint.sh, as `docker stop` sends it. Measures SIGTERM to exit, and reads the logs: whether supervisord had to
SIGKILL a program (docker stop kills everything 10 s after its SIGTERM; AppAPI and HaRP stop containers without a
longer timeout) and whether PostgreSQL shut down cleanly, and when the app itself had ended (supervisord's
"stopped: app" line; its stopwaitsecs is 4 s). `--timeline` prints the app's log lines after the SIGTERM, each with
its offset, to see where the app's stop spends its time. Writes the table to bench/results/stop_under_load.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for kit in ("tests", "tests/reliability", "tests/contract", "tests/appliance"):
    sys.path.insert(0, str(REPO / kit))

from appliance_stack import ApplianceStack, shipped_config  # noqa: E402  # after the sys.path lines
from load_clients import run_load  # noqa: E402
from local_ports import free_port  # noqa: E402

DOCKER_STOP_S = 10.0
LLAMA = {"llama": {"model": "smollm2-135m-instruct-q4_1", "n_ctx": 4096, "max_tokens": 512}}


def _log_lines(path: Path) -> list[tuple[float | None, str]]:
    """(time.time() of the line or None, message) for each line of a JSON-lines log."""
    lines: list[tuple[float | None, str]] = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            lines.append((None, line))
            continue
        stamp = record.get("ts")
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if isinstance(stamp, str) else None
        lines.append((at, str(record.get("msg", ""))))
    return lines


def one_stop(llm: str, clients: int, after_s: float, timeline: bool) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="ccb-stop-", dir="/tmp"))
    config = shipped_config(free_port())
    config["llm"] = LLAMA if llm == "llama" else {"extractive": {}}
    stack = ApplianceStack(root, config)
    try:
        stack.wait_healthy()
        stack.enable()
        load = threading.Thread(
            target=lambda: asyncio.run(run_load(stack.base_url, clients, after_s + 30)), daemon=True
        )
        load.start()
        time.sleep(after_s)
        started = time.monotonic()
        signalled_at = time.time()
        stack.process.send_signal(signal.SIGTERM)
        stack.process.wait(180)
        took = time.monotonic() - started
        logs = stack.storage.log_dir
        supervisord = _log_lines(logs / "supervisord.log")
        postgres = _log_lines(logs / "postgres.log")
        app_ended = [at for at, msg in supervisord if at is not None and msg.startswith("stopped: app ")]
        if timeline:
            app = [(at, f"app: {msg}") for at, msg in _log_lines(logs / "app.log")]
            programs = [(at, f"supervisord: {msg}") for at, msg in supervisord]
            after = [(at, msg) for at, msg in app + programs if at is not None and at >= signalled_at - 0.01]
            for at, msg in sorted(after):
                print(f"      +{at - signalled_at:6.3f}  {msg[:150]}", flush=True)
        return {
            "took_s": took,
            "app_s": app_ended[-1] - signalled_at if app_ended else None,
            "killed": [msg for _at, msg in supervisord if "SIGKILL" in msg],
            "postgres_clean": any(msg == "database system is shut down" for _at, msg in postgres),
            "rc": stack.process.returncode,
        }
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--after", default="5,10,15", help="seconds of load before SIGTERM, one run each per value")
    parser.add_argument("--llm", choices=("llama", "extractive"), default="llama")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "stop_under_load.txt")
    parser.add_argument("--timeline", action="store_true", help="print the app's log lines after each SIGTERM")
    args = parser.parse_args()
    lines = [
        f"# .venv/bin/python bench/stop_under_load.py --runs {args.runs} --clients {args.clients}"
        f" --after {args.after} --llm {args.llm}   ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        f"# {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}; docker stop kills after"
        f" {DOCKER_STOP_S:.0f} s",
        "run  load s  SIGTERM->exit s  app ended s  inside 10 s  SIGKILLs  PostgreSQL clean  rc",
    ]
    print("\n".join(lines), flush=True)
    worst = worst_app = 0.0
    kills = 0
    for run in range(args.runs):
        for after_s in (float(value) for value in args.after.split(",")):
            found = one_stop(args.llm, args.clients, after_s, args.timeline)
            took = float(str(found["took_s"]))
            worst = max(worst, took)
            app_s = found["app_s"]
            app_column = f"{app_s:>11.2f}" if isinstance(app_s, float) else f"{'?':>11}"
            worst_app = max(worst_app, app_s if isinstance(app_s, float) else 0.0)
            killed = found["killed"]
            kills += len(killed) if isinstance(killed, list) else 0
            row = (
                f"{run + 1:>3}  {after_s:>6.0f}  {took:>15.2f}  {app_column}"
                f"  {'yes' if took < DOCKER_STOP_S else 'NO':>11}"
                f"  {len(killed) if isinstance(killed, list) else '?':>8}  {found['postgres_clean']!s:>16}"
                f"  {found['rc']}"
            )
            print(row, flush=True)
            lines.append(row)
    lines.append(f"worst: {worst:.2f} s; app ended at worst {worst_app:.2f} s after the SIGTERM; SIGKILLs: {kills}")
    print(lines[-1])
    args.results.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
