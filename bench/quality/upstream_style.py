"""Upstream's chunking as the baseline: langchain's RecursiveCharacterTextSplitter, 2000 characters, 200 overlap.

Follows upstream's `doc_splitter.get_splitter_for` (contract §4.1): `keep_separator=True, strip_whitespace=True,
add_start_index=True`, regex separators, MarkdownTextSplitter's list for markdown and the default list otherwise.
The text comes from our own loaders, so both pipelines chunk the same normalized text.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from quart_app.loaders import DocumentChunk, extract_text

CHUNK_CHARS = 2000
OVERLAP_CHARS = CHUNK_CHARS // 10
DEFAULT_SEPARATORS = ["\n\n", "\n", r"\.", r"\?", "!", ";", r"\|+", " ", ""]
MARKDOWN_SEPARATORS = ["\n#{1,6} ", "```\n", "\n\\*\\*\\*+\n", "\n---+\n", "\n___+\n", "\n\n", "\n", " ", ""]


def _split_keeping_separator(text: str, separator: str) -> list[str]:
    """Pieces of `text` cut before each separator match (the separator starts the next piece)."""
    if not separator:
        return [c for c in text if c]
    parts = re.split(f"({separator})", text)
    pieces = [parts[0]] + [parts[i] + parts[i + 1] for i in range(1, len(parts) - 1, 2)]
    if len(parts) % 2 == 0:
        pieces.append(parts[-1])
    return [p for p in pieces if p]


def _merge(pieces: list[str], size: int, overlap: int) -> list[str]:
    """langchain's _merge_splits with an empty joiner: greedy windows up to `size`, ~`overlap` carried over."""
    chunks: list[str] = []
    current: list[str] = []
    total = 0
    for piece in pieces:
        if total + len(piece) > size and current:
            joined = "".join(current).strip()
            if joined:
                chunks.append(joined)
            while total > overlap or (total + len(piece) > size and total > 0):
                total -= len(current[0])
                current = current[1:]
        current.append(piece)
        total += len(piece)
    joined = "".join(current).strip()
    if joined:
        chunks.append(joined)
    return chunks


def split_recursively(
    text: str, separators: list[str], size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS
) -> list[str]:
    """RecursiveCharacterTextSplitter.split_text: cut on the first separator found, recurse into oversized pieces."""
    separator, rest = separators[-1], []
    for n, candidate in enumerate(separators):
        if candidate == "" or re.search(candidate, text):
            separator, rest = candidate, separators[n + 1 :]
            break
    chunks: list[str] = []
    small: list[str] = []
    for piece in _split_keeping_separator(text, separator):
        if len(piece) < size:
            small.append(piece)
            continue
        if small:
            chunks += _merge(small, size, overlap)
            small = []
        chunks += split_recursively(piece, rest, size, overlap) if rest else [piece]
    if small:
        chunks += _merge(small, size, overlap)
    return chunks


def upstream_chunks(text: str, mimetype: str) -> list[tuple[str, int]]:
    """(chunk text, start offset) as upstream's splitter with add_start_index=True yields them."""
    separators = MARKDOWN_SEPARATORS if mimetype == "text/markdown" else DEFAULT_SEPARATORS
    found: list[tuple[str, int]] = []
    index, previous = 0, 0
    for chunk in split_recursively(text, separators):
        index = text.find(chunk, max(0, index + previous - OVERLAP_CHARS))
        previous = len(chunk)
        found.append((chunk, max(index, 0)))
    return found


@dataclass
class UpstreamStyleParser:
    """A DocumentParser for IngestService: our loaders' text, upstream's character chunks, counted in model tokens."""

    tokenizer_file: Path

    def __post_init__(self) -> None:
        self._tokenizer = Tokenizer.from_file(str(self.tokenizer_file))
        self._tokenizer.no_truncation()  # tokenizer.json cuts at 128: count whole chunks, as the worker's budget needs

    def _parse(self, path: Path, mimetype: str) -> list[DocumentChunk]:
        pieces = upstream_chunks(extract_text(path, mimetype), mimetype)
        encodings = self._tokenizer.encode_batch([text for text, _ in pieces], add_special_tokens=False)
        return [
            DocumentChunk(text, start, max(1, len(encoding.ids)), hashlib.sha256(text.encode("utf-8")).digest())
            for (text, start), encoding in zip(pieces, encodings, strict=True)
        ]

    async def parse_and_chunk(self, path: Path, mimetype: str, name: str = "") -> list[DocumentChunk]:
        return await asyncio.to_thread(self._parse, path, mimetype)
