"""A question matched against document titles (file names): the words of a name, and the file names a question gives."""

from __future__ import annotations

import re
from collections.abc import Sequence

# words of a file name or a question: runs of letters and digits in any script (`dependency-resolution.md`)
_NAME_WORD = re.compile(r"[^\W_]+")
# shorter name words ("a", "to", "v2") and numbers say little about what a file holds
MIN_NAME_WORD = 3


def file_name(title: str) -> str:
    """A title's last path part, case-folded and without leading dots (`.pre-commit-config.yaml` as the question's
    identifier `pre-commit-config.yaml`)."""
    return title.rsplit("/", 1)[-1].casefold().lstrip(".")


def file_name_words(title: str) -> list[str]:
    """The distinct words of a title's file name without its extension (`docs/dependency-resolution.md`:
    dependency, resolution)."""
    name = file_name(title)
    stem = name.rpartition(".")[0] or name
    return [w for w in dict.fromkeys(_NAME_WORD.findall(stem)) if len(w) >= MIN_NAME_WORD and not w.isdigit()]


def question_words(question: str) -> frozenset[str]:
    """The words of a question as title_match compares them (linear in the question: read it once, off the loop)."""
    return frozenset(_NAME_WORD.findall(question.casefold()))


def title_match(title: str, asked: frozenset[str]) -> float:
    """Share of the file name's words that occur in the question (its question_words; 0 when the name has none)."""
    words = file_name_words(title)
    if not words:
        return 0.0
    return sum(word in asked for word in words) / len(words)


def named_files(identifiers: Sequence[str]) -> list[str]:
    """The file names a question's identifiers can be (`dev/website.txt`: website.txt), as file_name gives them."""
    names = (file_name(identifier) for identifier in identifiers)
    return list(dict.fromkeys(name for name in names if "." in name))
