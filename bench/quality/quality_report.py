"""The quality benchmark's report (bench/quality/run.py): the corpus, the run and the table, as Markdown lines."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from metrics import render_table
from pipelines import RERANKED
from questions import Question
from upstream_style import CHUNK_CHARS


def report(
    args: argparse.Namespace, documents: list[dict[str, str]], texts: dict[str, str], questions: list[Question],
    table: dict[str, Any], facts: dict[str, Any], seconds: float,
) -> list[str]:  # fmt: skip
    types: dict[str, int] = {}
    for d in documents:
        types[d["mimetype"]] = types.get(d["mimetype"], 0) + 1
    kinds: dict[str, int] = {}
    for q in questions:
        kinds[q.kind] = kinds.get(q.kind, 0) + 1
    lines = [
        f"# Quality benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Command: `.venv/bin/python bench/quality/run.py {' '.join(sys.argv[1:])}`".replace("  ", " "),
        f"Corpus: {len(documents)} documents ({', '.join(f'{n} {t}' for t, n in sorted(types.items()))}),"
        f" {sum(map(len, texts.values())):,} characters after our loaders (bench/quality/README.md).",
        f"Questions: {len(questions)} ({', '.join(f'{n} {k}' for k, n in kinds.items())});"
        f" split {args.split}: {sum(q.split == 'tune' for q in questions)} tune,"
        f" {sum(q.split == 'heldout' for q in questions)} held-out; asked by "
        + (
            "each gold file's project user (its project's documents only)."
            if args.asker == "project"
            else "a user who reads every document."
        ),
        f"Embedder: {args.model}, {os.cpu_count()} cores, load average {os.getloadavg()[1]:.1f}"
        f" at the end (timings scale with it; the scores do not); total run {seconds:.0f} s.",
        "",
        "| pipeline | chunks | avg tokens | avg chars | ingest + embed s | vectors cached / computed | questions s"
        " | /docSearch p50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {
        "ours": "ours (shipped config)",
        RERANKED: f"ours + reranker {args.reranker} ({args.rerank_candidates} candidates, {args.rerank_tokens} tokens)",
        "upstream": f"upstream-style ({CHUNK_CHARS}-char, vector only, 20 chunks)",
    }
    for pipeline, f in facts.items():
        lines.append(
            f"| {names[pipeline]} | {f['chunks']} | {f['avg_tokens']:.0f} | {f['avg_chars']:.0f} | {f['seconds']:.0f} |"
            f" {f.get('vectors_cached', 0)} / {f.get('vectors_computed', 'all')} | {f['questions_s']:.0f} |"
            f" {f['doc_search_p50_ms']:.0f} |"
        )
    lines += [
        "",
        "H@1/H@5/MRR: the gold file among /docSearch's 10 documents; recall: the gold snippet inside the /query"
        " prompt (of 20 chunks: ours the best within nc_texttotext's context_tokens, upstream-style all that fit n_ctx"
        " 8192 - 512); prompt: median characters.",
        "",
    ]
    for pipeline, f in facts.items():
        if "cross_lingual_fill_s" in f:
            lines[-1:-1] = [
                f"{names[pipeline]}: the cross-lingual leg's vectors of all {f['chunks']} chunks filled in after"
                f" ingest in {f['cross_lingual_fill_s']:.0f} s ({f['cross_lingual_threads'] or os.cpu_count()}"
                f" thread(s); {f.get('cross_lingual_cached', 0)} cached / {f.get('cross_lingual_computed', 'all')}"
                " computed).",
                "",
            ]
    table_lines: list[str] = render_table(table, list(facts))
    return lines + table_lines
