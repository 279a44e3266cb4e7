"""Pull-mode actions loop (PHP app 5.4+): access changes and deletes applied per second.

    PYTHONPATH=<tree> .venv/bin/python bench/pull_actions_throughput.py --label before|after [--docs 100]
        [--actions 2000] [--actions-batch N]

Run it once per tree (PYTHONPATH names the tree whose quart_app/appliance are measured; this file may live in
another one), alternating the trees so machine load weighs on both alike. One run:
  1. starts an embedded PostgreSQL and the embedder program (bench/bench_services.py), the fake Nextcloud
     (tests/pull/nextcloud_pull_fake.py, in its own process as the real one is) and the real app (create_app);
  2. indexes --docs small documents of user alice through the documents queue, until every file is acknowledged
     and every chunk embedded;
  3. queues --actions actions in the fake at once: mostly update_access_source_id allow/deny of bob, carol, dave
     and erin on those documents, some update_access_decl_source_id (alice and some of the others), a few
     delete_source_ids at the end; times from queueing until every action is applied: the fake holds no action
     row any more (every one acknowledged) and GET /status counts every action as applied or invalid
     (loops.actions.counters, in both trees). Both are asked every 50 ms, in both trees alike;
  4. checks that the access rows in the database are what the sequence of actions implies, for every document.
Prints the result and appends it to bench/results/pull_actions.txt (or --results).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# first, so that the tree PYTHONPATH names is measured (bench_services puts this file's tree first on sys.path)
import appliance
import quart_app

TREE = Path(quart_app.__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(TREE / "tests" / "pull"))

from bench_services import fresh_database, start_embedder, start_postgres, stop  # noqa: E402
from nextcloud_pull_fake import FakePullNextcloud  # noqa: E402
from pull_ingest_throughput import SECRET, drop_database, settings, signed, wait_embedded  # noqa: E402
from quart.testing.app import TestApp  # noqa: E402

from quart_app import create_app  # noqa: E402

OWNER = "alice"
OTHERS = ("bob", "carol", "dave", "erin")
PREFIX = "files__default: "
POLL_S = 0.05
WORDS = ("budget", "travel", "office", "hiking", "label", "model", "data", "code", "tent", "plan", "report", "draft")

Action = tuple[str, dict[str, Any]]


def make_docs(directory: Path, docs: int, seed: int = 5) -> None:
    """Small markdown notes (a heading and two short paragraphs: a chunk or two each)."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(docs):
        lines = [" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(2)]
        text = f"# Note {n}\n\nNote {n} of the actions bench.\n\n" + "\n\n".join(lines) + "\n"
        (directory / f"doc{n:05d}.md").write_text(text, encoding="utf-8")


def make_actions(source_ids: list[str], count: int, seed: int = 7) -> list[Action]:
    """About 89 % allow/deny, 10 % declarations, then a few deletes of two documents each (1 per 400 actions).

    alice (the owner) is never denied and is in every declaration, so no document loses its last reader."""
    rng = random.Random(seed)
    deletes = max(1, count // 400)
    actions: list[Action] = []
    for _ in range(count - deletes):
        source_id = rng.choice(source_ids)
        if rng.random() < 0.1:
            readers = [OWNER, *rng.sample(OTHERS, rng.randint(0, 3))]
            actions.append(("update_access_decl_source_id", {"userIds": readers, "sourceId": source_id}))
        else:
            users = rng.sample(OTHERS, rng.randint(1, 2))
            op = rng.choice(("allow", "deny"))
            actions.append(("update_access_source_id", {"op": op, "userIds": users, "sourceId": source_id}))
    doomed = rng.sample(source_ids, min(len(source_ids), 2 * deletes))
    actions += [("delete_source_ids", {"sourceIds": doomed[i : i + 2]}) for i in range(0, len(doomed), 2)]
    return actions


def expected_readers(source_ids: list[str], actions: list[Action]) -> dict[str, set[str] | None]:
    """What the actions imply, applied in order: each document's readers, None once it is deleted."""
    readers: dict[str, set[str] | None] = {sid: {OWNER} for sid in source_ids}
    for kind, payload in actions:
        if kind == "delete_source_ids":
            for sid in payload["sourceIds"]:
                readers[sid] = None
            continue
        current = readers[payload["sourceId"]]
        if current is None:
            continue
        if kind == "update_access_decl_source_id":
            readers[payload["sourceId"]] = set(payload["userIds"])
        elif payload["op"] == "allow":
            current.update(payload["userIds"])
        else:
            current.difference_update(payload["userIds"])
            if not current:
                readers[payload["sourceId"]] = None  # the last reader denied: the document goes
    return readers


def serve_nextcloud(corpus: Path) -> None:
    """The fake Nextcloud in its own process, every corpus file queued; answers one line per command on stdin:
    `files` → files acknowledged; `queue <path>` → the actions in that JSON file queued; `actions` → action rows
    acknowledged and still queued. Ends on EOF."""
    with FakePullNextcloud(secret=SECRET) as nextcloud:
        ids = [
            nextcloud.add_file([OWNER], path.name, path.read_bytes(), mimetype="text/markdown")
            for path in sorted(corpus.glob("*.md"))
        ]
        print(json.dumps({"url": nextcloud.url, "source_ids": [f"{PREFIX}{i}" for i in ids]}), flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "files":
                answer: Any = len(nextcloud.acked_documents()["files"])
            elif command == "queue":
                actions = json.loads(Path(argument).read_text(encoding="utf-8"))
                answer = len(nextcloud.add_actions([(kind, payload) for kind, payload in actions]))
            else:
                answer = {
                    "acked": len(nextcloud.acked_documents()["actions"]),
                    "queued": len(nextcloud.queue_rows()["actions"]),
                }
            print(json.dumps(answer), flush=True)


class Fake:
    """The fake Nextcloud's process and its command pipe."""

    def __init__(self, corpus: Path) -> None:
        command = [sys.executable, __file__, "--serve-nextcloud", str(corpus)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = json.loads(self.ask_now(None))
        self.url: str = hello["url"]
        self.source_ids: list[str] = hello["source_ids"]

    def ask_now(self, command: str | None) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        return self.process.stdout.readline()

    async def ask(self, command: str) -> Any:
        return json.loads(await asyncio.to_thread(self.ask_now, command))

    def close(self) -> None:
        self.process.communicate("", timeout=30)


async def database_readers(app: Any) -> dict[str, set[str]]:
    """Every stored document's readers as the access table holds them."""
    db = app.extensions["ccb_engine"].db
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT d.source_id, a.user_id FROM documents d LEFT JOIN access a ON a.source_id = d.source_id"
        )
        rows = await cur.fetchall()
    readers: dict[str, set[str]] = {}
    for source_id, user_id in rows:
        readers.setdefault(str(source_id), set())
        if user_id is not None:
            readers[str(source_id)].add(str(user_id))
    return readers


async def action_counters(client: Any) -> tuple[dict[str, int], float]:
    """loops.actions.counters from GET /status, and how long the request took."""
    started = time.perf_counter()
    response = await client.get("/status", headers=signed())
    assert response.status_code == 200, await response.get_data()
    report = await response.get_json()
    counters: dict[str, int] = report["loops"]["actions"]["counters"]
    return counters, time.perf_counter() - started


async def run(args: argparse.Namespace, root: Path, dsn: str, url: str, fake: Fake) -> dict[str, Any]:
    # an idle queue is polled again within 0.1 s: the wait for the first claim stays small in both trees
    batch = {} if args.actions_batch is None else {"actions_batch_size": args.actions_batch}
    app_settings = settings(root, dsn, url, fake.url, pull={"idle_poll_s": 0.05, "idle_poll_max_s": 0.1}, **batch)
    app = create_app(app_settings)
    docs = len(fake.source_ids)
    async with TestApp(app, startup_timeout=120, shutdown_timeout=60):
        client = app.test_client()
        response = await client.put("/enabled", query_string={"enabled": "1"}, headers=signed())
        assert response.status_code == 200, await response.get_data()
        started = time.perf_counter()
        while True:
            if await fake.ask("files") >= docs:
                break
            await asyncio.sleep(0.25)
        report, _ = await wait_embedded(app, docs, started)
        index_s = time.perf_counter() - started
        print(f"indexed {docs} documents, {report['chunks']['embedded']} chunks in {index_s:.1f} s", flush=True)
        before, _ = await action_counters(client)

        actions = make_actions(fake.source_ids, args.actions)
        actions_file = root / "actions.json"
        actions_file.write_text(json.dumps(actions), encoding="utf-8")
        started = time.perf_counter()
        assert await fake.ask(f"queue {actions_file}") == len(actions)
        status_polls: list[float] = []
        while True:
            # /status is asked on every poll, not only once all are acknowledged: the after tree acknowledges
            # before it applies, and its runs would otherwise bear more of the polls' load than the before runs
            queue = await fake.ask("actions")
            counters, took = await action_counters(client)
            status_polls.append(took)
            done = sum(counters.get(k, 0) - before.get(k, 0) for k in ("applied", "invalid"))
            if queue["queued"] == 0 and done >= len(actions):
                break
            await asyncio.sleep(POLL_S)
        seconds = time.perf_counter() - started

        expected = expected_readers(fake.source_ids, actions)
        stored = await database_readers(app)
        matching = sum(stored.get(sid) == readers for sid, readers in expected.items())
        extra = set(stored) - set(expected)
    delta = {k: v - before.get(k, 0) for k, v in counters.items() if v != before.get(k, 0)}
    return {
        "docs": docs,
        "chunks": report["chunks"]["embedded"],
        "index_s": index_s,
        "actions": len(actions),
        "mix": {kind: sum(a[0] == kind for a in actions) for kind in sorted({a[0] for a in actions})},
        "seconds": seconds,
        "acked": queue["acked"],
        "counters": delta,
        "status_polls": len(status_polls),
        "status_ms": 1000 * sum(status_polls) / len(status_polls),
        "matching": matching,
        "deleted": sum(r is None for r in expected.values()),
        "extra": len(extra),
        "batch": app_settings.config.actions_batch_size,
    }


def tree_hash() -> str:
    command = ["git", "-C", str(TREE), "rev-parse", "--short", "HEAD"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", help="the tree's name in the results: before, after, …")
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--actions", type=int, default=2000)
    parser.add_argument("--actions-batch", type=int, help="actions_batch_size (default: the app's)")
    parser.add_argument("--results", type=Path, default=BENCH / "results" / "pull_actions.txt")
    parser.add_argument("--serve-nextcloud", type=Path, help=argparse.SUPPRESS)  # internal: the fake's process
    args = parser.parse_args()
    if args.serve_nextcloud:
        serve_nextcloud(args.serve_nextcloud)
        return 0
    if not args.label:
        parser.error("--label is required")
    print(f"measuring {quart_app.__file__} and {appliance.__file__}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ccb-actions-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the unprivileged postgres user must traverse it
        make_docs(root / "corpus", args.docs)
        cluster, postgres = start_postgres(root)
        try:
            url, embedder = start_embedder(root)
            try:
                dsn = fresh_database(cluster, "bench_actions")
                fake = Fake(root / "corpus")
                try:
                    result = asyncio.run(run(args, root, dsn, url, fake))
                finally:
                    fake.close()
                drop_database(cluster, "bench_actions")
            finally:
                stop(embedder)
        finally:
            stop(postgres)
    rate = result["actions"] / result["seconds"]
    mix = ", ".join(f"{n} {kind}" for kind, n in result["mix"].items())
    lines = [
        f"{time.strftime('%Y-%m-%d %H:%M')} bench/pull_actions_throughput.py {' '.join(sys.argv[1:])}",
        f"  tree {args.label} ({tree_hash()}), {os.cpu_count()} CPU(s), actions_batch_size {result['batch']}:"
        f" {result['actions']} actions in {result['seconds']:.2f} s = {rate:.1f} actions/s",
        f"  actions: {mix}; {result['docs']} documents of {OWNER} ({result['chunks']} chunks, indexed in"
        f" {result['index_s']:.1f} s)",
        f"  counters {json.dumps(result['counters'], sort_keys=True)}, {result['acked']} acknowledged;"
        f" {result['status_polls']} GET /status polls of {result['status_ms']:.0f} ms on average",
        f"  correct: {result['matching']}/{result['docs']} documents have the readers the actions imply"
        f" ({result['deleted']} deleted), {result['extra']} stored documents the actions do not know",
    ]
    print("\n".join(lines))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
