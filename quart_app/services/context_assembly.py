"""Put the chosen chunks into the prompt as the documents hold them: one block per source (sources in order of their
best chunk), its chunks in document order, the overlap between neighbouring chunks said once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GAP_MARK = "\n\n[…]\n\n"  # between two passages of one document that do not touch: the reader sees text is missing


@dataclass(frozen=True, slots=True)
class ContextPiece:
    """A chunk to put into the prompt: its document title, source id, text and character offset in the document."""

    source_id: str
    title: str
    text: str
    start: int = 0

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    def render(self) -> str:
        """The form that goes into {context}: the title, then the text (as upstream 5.4 formats it)."""
        return f"{self.title}:\n\n{self.text}" if self.title else self.text


def _joined(first: ContextPiece, second: ContextPiece) -> ContextPiece:
    """Two passages of one document (second starts after first) as one; what `first` already holds is dropped."""
    if second.end <= first.end:
        return first
    if second.start < first.end:
        text = first.text + second.text[first.end - second.start :]
    else:
        # touching (only whitespace between) or a gap: a chunk never starts or ends with whitespace
        text = first.text + ("\n\n" if second.start <= first.end + 2 else GAP_MARK) + second.text
    return ContextPiece(first.source_id, first.title, text, first.start)


def assemble(pieces: Sequence[ContextPiece]) -> list[ContextPiece]:
    """One piece per source, in order of each source's first (best) piece; inside it the chunks in document order,
    overlaps removed and gaps marked."""
    by_source: dict[str, list[ContextPiece]] = {}
    for piece in pieces:
        by_source.setdefault(piece.source_id, []).append(piece)
    blocks: list[ContextPiece] = []
    for group in by_source.values():
        ordered = sorted(group, key=lambda p: p.start)
        block = ordered[0]
        for piece in ordered[1:]:
            block = _joined(block, piece)
        blocks.append(block)
    return blocks
