"""Scores of one pipeline on one question, and their aggregation into the per-kind, per-split table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from questions import ENGLISH_KINDS, KINDS, OTHER_LANGUAGE_KINDS, Question, squash

SPLITS = ("tune", "heldout", "all")
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    *((kind, (kind,)) for kind in KINDS),
    ("English (4 kinds)", ENGLISH_KINDS),
    ("other language", OTHER_LANGUAGE_KINDS),
    ("all", KINDS),
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One pipeline on one question: rank of the gold file in /docSearch (None = not in the list), whether the
    gold snippet is inside the packed /query prompt, and that prompt's size."""

    question_id: str
    kind: str
    split: str
    pipeline: str
    rank: int | None
    in_prompt: bool
    prompt_chars: int


def score(question: Question, pipeline: str, ranked_files: Sequence[str], prompt: str) -> Outcome:
    rank = ranked_files.index(question.gold) + 1 if question.gold in ranked_files else None
    return Outcome(
        question.id,
        question.kind,
        question.split,
        pipeline,
        rank,
        squash(question.answer) in squash(prompt),
        len(prompt),
    )


def summarise(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Hit@1, Hit@5, MRR (over the ranked list), context recall, median prompt characters."""
    n = len(outcomes)
    return {
        "n": n,
        "hit1": sum(o.rank == 1 for o in outcomes) / n,
        "hit5": sum(o.rank is not None and o.rank <= 5 for o in outcomes) / n,
        "mrr": sum(1 / o.rank for o in outcomes if o.rank is not None) / n,
        "recall": sum(o.in_prompt for o in outcomes) / n,
        "prompt_chars": statistics.median(o.prompt_chars for o in outcomes),
    }


def aggregate(outcomes: Sequence[Outcome], pipelines: Sequence[str]) -> dict[str, Any]:
    """{split: {group: {pipeline: summary}}} for every split and group that has questions."""
    table: dict[str, Any] = {}
    for split in SPLITS:
        table[split] = {}
        for group, kinds in GROUPS:
            chosen = [o for o in outcomes if o.kind in kinds and (split == "all" or o.split == split)]
            if chosen:
                table[split][group] = {p: summarise([o for o in chosen if o.pipeline == p]) for p in pipelines}
    return table


def render_table(table: dict[str, Any], pipelines: Sequence[str]) -> list[str]:
    """Markdown tables, one per split: n, then Hit@1 / Hit@5 / MRR / recall / median prompt chars per pipeline."""
    lines: list[str] = []
    for split, groups in table.items():
        lines += [f"### split: {split}", ""]
        header = "| kind | n |" + "".join(f" {p} H@1 | H@5 | MRR | recall | prompt |" for p in pipelines)
        lines += [header, "|" + "---|" * (2 + 5 * len(pipelines))]
        for group, by_pipeline in groups.items():
            row = f"| {group} | {by_pipeline[pipelines[0]]['n']} |"
            for p in pipelines:
                s = by_pipeline[p]
                row += f" {s['hit1']:.2f} | {s['hit5']:.2f} | {s['mrr']:.2f} | {s['recall']:.2f} |"
                row += f" {s['prompt_chars']:,.0f} |"
            lines.append(row)
        lines.append("")
    return lines


def outcome_rows(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    return [asdict(o) for o in outcomes]
