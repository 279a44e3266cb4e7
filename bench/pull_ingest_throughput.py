"""Pull-mode ingest (PHP app 5.4+) against push-mode ingest (PUT /loadSources) on the same files, and peak RSS.

    .venv/bin/python bench/pull_ingest_throughput.py [--docs 200] [--doc-kb 2] [--pull-batches 8,32,128]

Both runs use the real app (create_app, the engine, the embedding worker) with an embedded PostgreSQL and the
embedder program (MiniLM int8), each in its own process and database:
  push  the corpus sent as PUT /loadSources requests of 32 files (multipart, as the PHP app <= 5.3 sends them);
  pull  the same files queued in the fake Nextcloud (tests/pull/nextcloud_pull_fake.py in its own process, as the
        real one is; real HTTP over loopback); the documents poller claims doc_indexing_batch_size items per poll,
        downloads them and ingests them.
Each run ends when every chunk is embedded. Push runs are interleaved with the pull runs, and each pull run is
compared with the mean of the push runs before and after it. Writes bench/results/pull_ingest.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "pull"))

from bench_services import fresh_database, start_embedder, start_postgres, stop  # noqa: E402
from ingest_throughput import make_corpus  # noqa: E402
from nextcloud_pull_fake import FakePullNextcloud  # noqa: E402

from appliance.app_client import SourcePart, guzzle_multipart, signed_headers  # noqa: E402
from appliance.config import parse_config  # noqa: E402
from appliance.storage import StorageLayout  # noqa: E402
from quart_app import create_app  # noqa: E402
from quart_app.app_settings import AppSettings  # noqa: E402
from quart_app.services.status import status  # noqa: E402

SECRET = "bench-secret-0123456789"
PUSH_BATCH = 32


def drop_database(cluster: Any, name: str) -> None:
    with psycopg.connect(f"postgresql://postgres@/postgres?host={cluster.socket_dir}", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings(root: Path, dsn: str, url: str, nextcloud_url: str | None, **config: Any) -> AppSettings:
    """The app's settings for a run: the embedder at `url`, extractive answers, a fresh storage, `config` on top."""
    raw: dict[str, Any] = {
        "embedding": {"base_url": url, "workers": 1},
        "embedding_worker": {"workers": 2, "idle_poll_s": 1.0},
        "llm": {"extractive": {}},
        "ingest": {"parse_workers": 2},
        "pull": {"idle_poll_s": 0.2, "idle_poll_max_s": 1.0},
        **config,
    }
    return AppSettings(
        config=parse_config(raw, "bench", environ={}),
        storage=StorageLayout(root / f"storage-{uuid.uuid4().hex[:6]}"),
        db_url=dsn,
        app_secret=SECRET,
        app_version="5.4.0",
        nextcloud_url=nextcloud_url,
    )


def signed() -> dict[str, str]:
    return signed_headers("", secret=SECRET, app_id="context_chat_backend", version="5.4.0")


def multipart(paths: list[Path]) -> tuple[bytes, str]:
    """The PHP app's /loadSources body (one `sources` part per file)."""
    parts = [
        SourcePart(
            f"files__default: {path.stem[3:]}",
            path.read_bytes(),
            user_ids=("alice",),
            title=path.name,
            mimetype="text/markdown",
            modified=1700000000,
        )
        for path in paths
    ]
    return guzzle_multipart(parts)


async def wait_embedded(app: Any, docs: int, started: float) -> tuple[dict[str, Any], float]:
    """The final status, and the time when every document was stored (before its chunks were all embedded)."""
    db = app.extensions["ccb_engine"].db
    stored_s = 0.0
    while True:
        report = await status(db)
        if not stored_s and report["documents"]["indexed"] >= docs:
            stored_s = time.perf_counter() - started
        if stored_s and report["queue"]["depth"] == 0:
            return report, stored_s
        await asyncio.sleep(0.25)  # status() aggregates over all chunks: do not poll it hot


def serve_nextcloud(corpus: Path) -> None:
    """The fake Nextcloud in its own process (as the real one is), every corpus file queued; stats on stdin EOF."""
    with FakePullNextcloud(secret=SECRET) as nextcloud:
        for path in sorted(corpus.glob("*.md")):
            nextcloud.add_file(["alice"], path.name, path.read_bytes(), mimetype="text/markdown")
        print(nextcloud.url, flush=True)
        sys.stdin.read()
        print(json.dumps({"fetches": sum(nextcloud.file_fetches.values())}), flush=True)


async def run(
    mode: str, root: Path, dsn: str, url: str, paths: list[Path], batch: int, nextcloud_url: str | None
) -> dict[str, Any]:
    total = sum(p.stat().st_size for p in paths)
    app = create_app(settings(root, dsn, url, nextcloud_url, doc_indexing_batch_size=batch))
    async with app.test_app():
        client = app.test_client()
        started = time.perf_counter()
        await client.put("/enabled", query_string={"enabled": "1"}, headers=signed())
        if mode == "push":
            for start in range(0, len(paths), batch):
                body, content_type = multipart(paths[start : start + batch])
                response = await client.put(
                    "/loadSources", data=body, headers={**signed(), "Content-Type": content_type}
                )
                assert response.status_code == 200, await response.get_data()
        report, ingest_s = await wait_embedded(app, len(paths), started)
        seconds = time.perf_counter() - started
    return {
        "mode": mode,
        "batch": batch,
        "docs": len(paths),
        "bytes": total,
        "chunks": report["chunks"]["embedded"],
        "seconds": seconds,
        "ingest_s": ingest_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--doc-kb", type=int, default=2)
    parser.add_argument("--pull-batches", default="8,32,128")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results" / "pull_ingest.txt")
    parser.add_argument("--run", nargs=6, help=argparse.SUPPRESS)  # internal: mode root dsn url corpus batch
    parser.add_argument("--serve-nextcloud", type=Path, help=argparse.SUPPRESS)  # internal: the fake's process
    args = parser.parse_args()
    if args.serve_nextcloud:
        serve_nextcloud(args.serve_nextcloud)
        return 0
    if args.run:
        mode, root, dsn, url, corpus, batch = args.run
        paths = sorted(Path(corpus).glob("*.md"))
        nextcloud_url, server = None, None
        if mode == "pull":
            command = [sys.executable, __file__, "--serve-nextcloud", corpus]
            server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
            assert server.stdout is not None
            nextcloud_url = server.stdout.readline().strip()
        result = asyncio.run(run(mode, Path(root), dsn, url, paths, int(batch), nextcloud_url))
        result["fetches"] = 0
        if server is not None:
            out, _ = server.communicate("", timeout=30)
            result["fetches"] = json.loads(out.strip().splitlines()[-1])["fetches"]
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="ccb-pull-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the unprivileged postgres user must traverse it
        make_corpus(root / "corpus", args.docs, args.doc_kb)
        cluster, postgres = start_postgres(root)
        url, embedder = start_embedder(root)
        plan = [("push", PUSH_BATCH)]
        for batch in (int(b) for b in args.pull_batches.split(",")):
            plan += [("pull", batch), ("push", PUSH_BATCH)]
        results = []
        try:
            for index, (mode, batch) in enumerate(plan):
                dsn = fresh_database(cluster, f"bench_{mode}_{index}")
                command = [
                    sys.executable,
                    __file__,
                    "--run",
                    mode,
                    str(root),
                    dsn,
                    url,
                    str(root / "corpus"),
                    str(batch),
                ]
                completed = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
                results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), flush=True)
                drop_database(cluster, f"bench_{mode}_{index}")
        finally:
            stop(embedder)
            stop(postgres)
    corpus = f"{args.docs} markdown documents of ~{args.doc_kb} KB, {results[0]['chunks']} chunks"
    lines = [f"corpus: {corpus}, {os.cpu_count()} CPU(s), push requests of {PUSH_BATCH} files"]
    for index, result in enumerate(results):
        rate = result["chunks"] / result["seconds"]
        line = (
            f"{result['mode']} batch {result['batch']:<4}: {rate:6.1f} chunks/s"
            f" {result['docs'] / result['seconds']:6.2f} docs/s ({result['seconds']:.1f} s;"
            f" all documents stored at {result['ingest_s']:.1f} s)"
            f" peak RSS {result['peak_rss_mb']:.0f} MB"
        )
        if result["mode"] == "pull":
            before, after = results[index - 1], results[index + 1]
            push_rate = (before["chunks"] / before["seconds"] + after["chunks"] / after["seconds"]) / 2
            line += f"; {rate / push_rate:.3f} x the adjacent push runs ({push_rate:.1f} chunks/s)"
            line += f", {result['fetches']} downloads"
        lines.append(line)
    print("\n".join(lines))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    header = f"{time.strftime('%Y-%m-%d %H:%M')} bench/pull_ingest_throughput.py {' '.join(sys.argv[1:])}\n"
    args.results.write_text(header + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
