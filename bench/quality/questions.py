"""The hand-written questions: loading, the fixed held-out split, and the check that every gold answer is real."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

QUESTIONS_FILE = Path(__file__).with_name("questions.jsonl")
ENGLISH_KINDS = ("paraphrase", "identifier", "topic", "fact")
OTHER_LANGUAGE_KINDS = ("german", "french", "spanish")
KINDS = ENGLISH_KINDS + OTHER_LANGUAGE_KINDS
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Question:
    """One question: its kind, the file that answers it (relative to the corpus) and a snippet of that answer."""

    id: str
    kind: str
    question: str
    gold: str
    answer: str

    @property
    def split(self) -> str:
        """'heldout' for a fixed third (sha256 of the id, mod 3 == 0), chosen before any result was seen."""
        return "heldout" if int(hashlib.sha256(self.id.encode()).hexdigest(), 16) % 3 == 0 else "tune"


def squash(text: str) -> str:
    """Case- and whitespace-insensitive form used to find a gold snippet in a document or a prompt."""
    return _SPACES.sub(" ", text).strip().casefold()


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        question = Question(item["id"], item["kind"], item["question"], item["gold"], item["answer"])
        if question.kind not in KINDS:
            raise ValueError(f"{path}:{number}: kind {question.kind!r} is not one of {', '.join(KINDS)}")
        questions.append(question)
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate question ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    return questions


def check_questions(questions: list[Question], texts: dict[str, str]) -> list[str]:
    """Problems: a gold file not in the corpus, or a gold snippet not inside its file's normalized text."""
    problems = []
    for question in questions:
        text = texts.get(question.gold)
        if text is None:
            problems.append(f"{question.id}: gold file {question.gold!r} is not in the corpus")
        elif squash(question.answer) not in squash(text):
            problems.append(f"{question.id}: answer {question.answer!r} is not in {question.gold}")
    return problems
