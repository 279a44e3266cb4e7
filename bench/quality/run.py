"""Retrieval and context quality on a real documentation corpus: ours next to an upstream-style baseline.

    .venv/bin/python bench/quality/run.py [--split tune|heldout|all] [--asker all|project] [--reranker MODEL] [--check]

Fetches the corpus (bench/quality/fetch_corpus.py, cached), checks every question's gold snippet against its gold
file, starts an embedded PostgreSQL and the embedder (MiniLM int8) as bench/ingest_throughput.py does, then ingests
the corpus twice through IngestService + EmbeddingWorker into two databases:
  ours      the parse pool and token chunker with the shipped config (configs/config.cpu.yaml);
  upstream  our loaders' text cut by upstream's 2000-character splitter (bench/quality/upstream_style.py).
Every question is asked as /docSearch asks it (AnswerService.doc_search, 10 documents: Hit@1, Hit@5, MRR by file)
and as /query asks it (AnswerService.query, 20 chunks packed by the nc_texttotext budget; the LLM is replaced by one
that returns the prompt: context recall = the gold snippet inside it). The upstream-style run uses the same services
with vector search only (lexical weight 0, exact scan) and no per-document cap. --reranker MODEL asks every
question a third time, through ours' database with retrieval.reranker set (column "reranked"). Writes the table to
bench/results/quality-<date>.md and every outcome to .json. --check only checks the questions. --asker project asks
each question as a user who reads only its gold file's project (1-45 documents, as a Nextcloud user's own files)
instead of one who reads the whole corpus.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(HERE)]
from bench_services import MODEL, start_embedder, start_postgres, stop  # noqa: E402  # after the sys.path line
from fetch_corpus import DEFAULT_CACHE, fetch, load_manifest  # noqa: E402
from metrics import aggregate, outcome_rows  # noqa: E402
from pipelines import PIPELINES, BenchModel, run_pipelines  # noqa: E402
from quality_report import report  # noqa: E402
from questions import check_questions, load_questions  # noqa: E402

from appliance.retrieval_config import RerankerConfig  # noqa: E402
from quart_app.loaders import extract_text  # noqa: E402


def corpus_texts(corpus: Path, documents: list[dict[str, str]]) -> dict[str, str]:
    """Each document's normalized text, as our loaders produce it (what the gold snippets must occur in)."""
    return {d["path"]: extract_text(corpus / d["path"], d["mimetype"]) for d in documents}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("tune", "heldout", "all"), default="all", help="which questions to ask")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the corpus is cached")
    parser.add_argument(
        "--packages",
        help="comma-separated corpus folders (click,requests,...) to use only part of the corpus, with its questions",
    )
    parser.add_argument("--check", action="store_true", help="only check the questions against the corpus")
    parser.add_argument("--model", default=MODEL, help="embedding model (catalogue id) of both pipelines")
    parser.add_argument("--chunk-tokens", type=int, help="ours' chunk size in model tokens (embedding.chunk_tokens)")
    parser.add_argument(
        "--pipelines",
        type=lambda value: tuple(value.split(",")),
        default=PIPELINES,
        help="ours,upstream (default) or one of them",
    )
    parser.add_argument(
        "--vector-cache",
        type=Path,
        default=DEFAULT_CACHE.parent / "quality-vectors",
        help="vectors kept between runs (the embedder is asked only for texts it has not seen)",
    )
    parser.add_argument("--no-vector-cache", action="store_true", help="embed everything (for ingest timings)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--reranker",
        metavar="MODEL",
        help="also ask every question through ours + this catalogue model as retrieval.reranker (same database)",
    )
    parser.add_argument("--rerank-candidates", type=int, default=20, help="retrieval.reranker.candidates")
    parser.add_argument("--rerank-tokens", type=int, default=128, help="retrieval.reranker.passage_tokens")
    parser.add_argument(
        "--no-cross-lingual", action="store_true", help="turn off the shipped config's retrieval.cross_lingual leg"
    )
    parser.add_argument(
        "--asker",
        choices=("all", "project"),
        default="all",
        help="who asks: a user who reads every document (default), or one who reads only the gold file's project"
        " (1-45 documents, as a Nextcloud user's own files)",
    )
    parser.add_argument(
        "--cross-lingual-threads",
        type=int,
        default=0,
        help="threads of the cross-lingual model while its vectors are filled in (0: one per core; the shipped"
        " config's value is for the app beside other work)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    corpus = fetch(args.cache)
    documents = load_manifest(corpus)
    if args.packages:
        chosen = set(args.packages.split(","))
        documents = [d for d in documents if d["path"].split("/", 1)[0] in chosen]
    texts = corpus_texts(corpus, documents)
    questions = [q for q in load_questions() if args.split in ("all", q.split) and q.gold in texts]
    problems = check_questions(questions, texts)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    if args.check:
        print(f"{len(questions)} questions checked against {len(documents)} documents: every gold snippet found")
        return 0
    with tempfile.TemporaryDirectory(prefix="ccb-bench-quality-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the unprivileged postgres and parser users must traverse it
        cluster, postgres = start_postgres(root)
        embedders = []
        model = BenchModel.from_catalogue(args.model, root / "model_files", args.chunk_tokens)
        for pipeline in args.pipelines:
            (root / pipeline).mkdir()
            embedders.append(start_embedder(root / pipeline, model=model.id, runtime=model.runtime))
        try:
            outcomes, facts = asyncio.run(
                run_pipelines(
                    cluster,
                    [url for url, _ in embedders],
                    corpus,
                    documents,
                    questions,
                    root,
                    None if args.no_vector_cache else args.vector_cache,
                    model,
                    args.pipelines,
                    None
                    if args.reranker is None
                    else RerankerConfig(
                        model=args.reranker, candidates=args.rerank_candidates, passage_tokens=args.rerank_tokens
                    ),
                    None if args.no_cross_lingual else args.cross_lingual_threads,
                    args.asker == "project",
                )
            )
        finally:
            for _, embedder in embedders:
                stop(embedder)
            stop(postgres)
    seconds = time.perf_counter() - started
    table = aggregate(outcomes, list(dict.fromkeys(o.pipeline for o in outcomes)))
    lines = report(args, documents, texts, questions, table, facts, seconds)
    print("\n".join(lines))
    stamp = time.strftime("%Y-%m-%d", time.gmtime()) + ("" if args.model == MODEL else f"-{args.model}")
    stamp += f"-{args.chunk_tokens}-tokens" if args.chunk_tokens else ""
    stamp += "-no-cross-lingual" if args.no_cross_lingual else ""
    stamp += "-project-users" if args.asker == "project" else ""
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"quality-{stamp}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    payload = {"facts": facts, "table": table, "outcomes": outcome_rows(outcomes), "seconds": seconds}
    (args.results / f"quality-{stamp}.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"written to {args.results / f'quality-{stamp}.md'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
