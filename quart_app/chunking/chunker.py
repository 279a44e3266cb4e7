"""Token-budgeted recursive chunker.

Sizes are measured in the embedding model's own tokens. The text is tokenized once (with offsets) so the
token count of any span is two binary searches; the text is then cut recursively on structure (see
`separators.py`), neighbouring pieces are merged greedily up to the budget (the last piece of a section too
big to fit whole merges on with what follows it), and each chunk after the first is extended backwards by
~`overlap_tokens` tokens (snapped to a word start). A chunk of a document with headings carries a header, the
titles of the sections around it (see `headings.py`), which is embedded with it (`embedding_text`): its tokens
are reserved from the budget. Every chunk is re-encoded with its header before it is yielded, so
`token_count <= chunk_tokens` holds exactly, whatever the tokenizer.
Chunks are also capped at `max_chunk_chars` (default 12 per token), because a tokenizer can count a long
run of junk (base64, hashes) as very few tokens.

Invariant: `text[c.start : c.start + len(c.text)] == c.text`, `c.text` has no leading/trailing whitespace and
`c.token_count >= 1`: a span the tokenizer sees nothing in is left out.
Pass text through `quart_app.loaders.normalize_text` first (the loaders already return normalized text).
"""

import bisect
import re
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice, pairwise

from tokenizers import Tokenizer

from .errors import ChunkerConfigError, ChunkerInputError
from .headings import PATH_SEPARATOR, Heading, HeadingPaths, find_headings
from .separators import Rules, rules_for

# the text is tokenized in pieces of about this many characters, this many pieces per parallel batch: the
# tokenizer's working memory (~500 bytes per token) then covers one batch, not the whole document
_ENCODE_PIECE_CHARS = 32_768
_ENCODE_BATCH_PIECES = 4
# chunks verified per encode_batch call
_VERIFY_BATCH = 256
_NEXT_WHITESPACE = re.compile(r"\s")
# the character cap per chunk is this many characters per token of budget (real text has 3-6)
DEFAULT_CHARS_PER_TOKEN = 12
# a header takes at most this share of the budget; longer heading paths lose their middle titles, then their end
HEADER_SHARE = 8
_HEADER_GAP = "\n"


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document: its text, its char offset in the normalized text, and its size in model tokens."""

    text: str
    start: int
    # tokens of `embedding_text(header, text)`, what the embedder is given
    token_count: int
    # titles of the sections around the chunk ("Guide > Install > Linux"); "" when the document has no headings
    header: str = ""


def embedding_text(header: str, text: str) -> str:
    """What is embedded for a chunk: its header line, then its text."""
    return f"{header}{_HEADER_GAP}{text}" if header else text


def _counting_copy(tokenizer: Tokenizer) -> Tokenizer:
    """A private copy that counts tokens: tokenizer.json files often carry truncation/padding settings (MiniLM's pads
    every text to 128) that would distort counts."""
    counter = Tokenizer.from_str(tokenizer.to_str())
    counter.no_truncation()
    counter.no_padding()
    # a document's "[SEP]" is counted as the text the embedder reads it as (onnx_runtime), not as one special token
    counter.encode_special_tokens = True
    return counter


def prefix_tokens(tokenizer: Tokenizer, prefix: str) -> int:
    """Tokens a passage prefix ("passage: ") takes, without special tokens or the tokenizer file's padding."""
    return len(_counting_copy(tokenizer).encode(prefix, add_special_tokens=False).ids)


def default_chunk_tokens(model_max_tokens: int, special_tokens: int = 2, prefix_tokens: int = 0) -> int:
    """Largest chunk that fits the model: its max length minus [CLS]/[SEP]-like tokens and any passage prefix."""
    budget = model_max_tokens - special_tokens - prefix_tokens
    if budget < 1:
        raise ChunkerConfigError(
            f"model_max_tokens={model_max_tokens} leaves no room for text after {special_tokens} special and "
            f"{prefix_tokens} prefix tokens; check the model's max length in the catalogue"
        )
    return budget


def default_overlap_tokens(chunk_tokens: int) -> int:
    """A tenth of the chunk, upstream's ratio."""
    return chunk_tokens // 10


class TokenChunker:
    """`TokenChunker(tokenizer, 254, 25).split(text, "text/markdown")` yields `Chunk`s within the token budget."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        chunk_tokens: int,
        overlap_tokens: int | None = None,
        max_chunk_chars: int | None = None,
    ) -> None:
        if chunk_tokens < 2:
            raise ChunkerConfigError(f"chunk_tokens must be >= 2, got {chunk_tokens}")
        overlap = default_overlap_tokens(chunk_tokens) if overlap_tokens is None else overlap_tokens
        if not 0 <= overlap <= chunk_tokens // 2:
            raise ChunkerConfigError(
                f"overlap_tokens must be between 0 and chunk_tokens/2 ({chunk_tokens // 2}), got {overlap}"
            )
        # WordPiece maps any word over 100 characters to one [UNK]: without a character cap, 254 "tokens" of
        # base64 would make a 250 kB chunk that no LLM context could take
        chars = max_chunk_chars if max_chunk_chars is not None else chunk_tokens * DEFAULT_CHARS_PER_TOKEN
        if chars < chunk_tokens:
            raise ChunkerConfigError(f"max_chunk_chars must be >= chunk_tokens ({chunk_tokens}), got {chars}")
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap
        self.max_chunk_chars = chars
        self._tokenizer = _counting_copy(tokenizer)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` without special tokens, as the budget counts them."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def truncated(self, text: str, max_tokens: int) -> str:
        """`text` cut after its first `max_tokens` tokens."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        if len(encoding.ids) <= max_tokens:
            return text
        return text[: encoding.offsets[max_tokens][0]].rstrip()

    def split(self, text: str, mimetype: str) -> Iterator[Chunk]:
        """Chunks of `text` in document order, split by the rules for `mimetype`."""
        if "\x00" in text:
            # PostgreSQL text cannot hold NUL, and normalizing here would move the offsets under the caller
            raise ChunkerInputError("the text contains NUL characters; pass it through normalize_text() first")
        if not text.strip():
            return
        starts = self._token_starts(text)
        headers = _Headers(self, find_headings(text, mimetype))
        core_tokens = self.chunk_tokens - self.overlap_tokens - headers.reserved_tokens
        core_chars = self.max_chunk_chars * core_tokens // self.chunk_tokens
        segments = _Segmenter(text, starts, core_tokens, core_chars, rules_for(mimetype)).run()
        spans = ((a, b, headers.around(a, b)) for a, b in self._with_overlap(text, starts, segments))
        while batch := list(islice(spans, _VERIFY_BATCH)):
            # offsets are not needed to count, and skipping them is ~2x faster
            encodings = self._tokenizer.encode_batch_fast(
                [embedding_text(h, text[a:b]) for a, b, h in batch], add_special_tokens=False
            )
            for (a, b, header), encoding in zip(batch, encodings, strict=True):
                if not encoding.ids:
                    # only characters the tokenizer drops (a PDF symbol font's private-use glyphs, control
                    # characters): nothing to embed, and a 0-token chunk failed its whole document as malformed
                    continue
                if len(encoding.ids) <= self.chunk_tokens:
                    yield Chunk(text[a:b], a, len(encoding.ids), header)
                else:  # the tokenizer merged differently across our cut; halve until it fits
                    yield from self._fit(text, a, b, header)

    def _token_starts(self, text: str) -> Sequence[int]:
        """Start offset of every token of `text` (8 bytes each), tokenized in pieces cut at whitespace."""
        bounds = [0]
        while len(text) - bounds[-1] > _ENCODE_PIECE_CHARS:
            target = bounds[-1] + _ENCODE_PIECE_CHARS
            found = _NEXT_WHITESPACE.search(text, target, target + _ENCODE_PIECE_CHARS)
            # text without whitespace (CJK, a token soup) is cut anyway; the chunks are re-counted exactly later
            bounds.append(found.start() if found is not None else target)
        bounds.append(len(text))
        starts = array("q")
        for first in range(0, len(bounds) - 1, _ENCODE_BATCH_PIECES):
            window = bounds[first : first + _ENCODE_BATCH_PIECES + 1]
            encodings = self._tokenizer.encode_batch([text[a:b] for a, b in pairwise(window)], add_special_tokens=False)
            for base, encoding in zip(window, encodings, strict=False):
                starts.extend(base + s for s, _e in encoding.offsets)
        return starts

    def _with_overlap(
        self, text: str, starts: Sequence[int], segments: Iterator[tuple[int, int]]
    ) -> Iterator[tuple[int, int]]:
        previous_first = -1
        for a, b in segments:
            first = bisect.bisect_left(starts, a)
            begin = a
            if previous_first >= 0 and self.overlap_tokens:
                k = max(first - self.overlap_tokens, previous_first)
                # start the overlap at a word start so the chunk does not open with a word fragment
                while k < first and (
                    (starts[k] > 0 and not text[starts[k] - 1].isspace()) or b - starts[k] > self.max_chunk_chars
                ):
                    k += 1
                begin = starts[k] if k < first else a
            previous_first = first
            yield begin, b

    def _fit(self, text: str, a: int, b: int, header: str) -> Iterator[Chunk]:
        tokens = self.count_tokens(embedding_text(header, text[a:b]))
        if tokens <= self.chunk_tokens:
            if tokens:
                yield Chunk(text[a:b], a, tokens, header)
            return
        encoding = self._tokenizer.encode(text[a:b], add_special_tokens=False)
        cut = a + encoding.offsets[len(encoding.ids) // 2][0]
        for lo, hi in ((a, cut), (cut, b)):
            lo, hi = _trim(text, lo, hi)
            if lo < hi:
                yield from self._fit(text, lo, hi, header)


class _Headers:
    """The header of each chunk, from the document's headings; every header fits `reserved_tokens`."""

    def __init__(self, chunker: TokenChunker, headings: Sequence[Heading]) -> None:
        self._chunker = chunker
        self._paths = HeadingPaths(headings)
        self._cap = chunker.chunk_tokens // HEADER_SHARE
        self._cache: dict[tuple[str, ...], str] = {}
        # a header is some heading's path cut short, so the longest path bounds them all
        longest = max((self._tokens(self._paths.at_heading(n)) for n in range(len(headings))), default=0)
        self.reserved_tokens = min(longest, self._cap) + chunker.count_tokens(_HEADER_GAP) if longest else 0

    def _tokens(self, titles: Sequence[str]) -> int:
        return self._chunker.count_tokens(PATH_SEPARATOR.join(titles))

    def around(self, a: int, b: int) -> str:
        titles = tuple(self._paths.around(a, b))
        if titles not in self._cache:
            self._cache[titles] = self._shortened(list(titles))
        return self._cache[titles]

    def _shortened(self, titles: list[str]) -> str:
        # the outermost (the document's title) and innermost titles say most; the ones between go first
        while len(titles) > 2 and self._tokens(titles) > self._cap:
            del titles[1]
        return self._chunker.truncated(PATH_SEPARATOR.join(titles), self._cap)


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


class _Segmenter:
    """Non-overlapping, whitespace-trimmed spans within `budget` tokens (by the global offsets) and `max_chars`."""

    def __init__(self, text: str, starts: Sequence[int], budget: int, max_chars: int, rules: Rules) -> None:
        self.text, self.starts, self.budget, self.max_chars, self.rules = text, starts, budget, max_chars, rules

    def run(self) -> Iterator[tuple[int, int]]:
        a, b = _trim(self.text, 0, len(self.text))
        yield from self._split(a, b, 0)

    def _fits(self, a: int, b: int) -> bool:
        if b - a > self.max_chars:
            return False
        return bisect.bisect_left(self.starts, b) - bisect.bisect_left(self.starts, a) <= self.budget

    def _split(self, a: int, b: int, level: int) -> Iterator[tuple[int, int]]:
        if self._fits(a, b):
            yield a, b
            return
        if level >= len(self.rules):
            yield from self._hard_cut(a, b)
            return
        cuts = [m.end() for m in self.rules[level].finditer(self.text, a, b) if a < m.end() < b]
        if not cuts:
            yield from self._split(a, b, level + 1)
            return
        yield from self._merge(self._pieces(a, b, cuts), level)

    def _pieces(self, a: int, b: int, cuts: Sequence[int]) -> Iterator[tuple[int, int]]:
        for lo, hi in zip([a, *cuts], [*cuts, b], strict=True):
            lo, hi = _trim(self.text, lo, hi)
            if lo < hi:
                yield lo, hi

    def _merge(self, pieces: Iterator[tuple[int, int]], level: int) -> Iterator[tuple[int, int]]:
        run: tuple[int, int] | None = None
        for piece in pieces:
            # a piece too big to fit whole is cut finer, and its parts fill the runs like any other piece: the
            # small sections before and after it merge with its first and last parts
            parts = (piece,) if self._fits(*piece) else self._split(*piece, level + 1)
            for lo, hi in parts:
                if run is not None and self._fits(run[0], hi):
                    run = (run[0], hi)
                    continue
                if run is not None:
                    yield run
                run = (lo, hi)
        if run is not None:
            yield run

    def _hard_cut(self, a: int, b: int) -> Iterator[tuple[int, int]]:
        # no structure left (a token soup or one giant "word"): cut every `budget` tokens or `max_chars` characters
        starts = self.starts
        pos = a
        while pos < b:
            k = bisect.bisect_left(starts, pos)
            end = starts[k + self.budget] if k + self.budget < len(starts) and starts[k + self.budget] < b else b
            if end - pos > self.max_chars:
                # prefer a token boundary inside the character window; cut inside the token if there is none
                j = bisect.bisect_right(starts, pos + self.max_chars) - 1
                end = starts[j] if j > k and starts[j] > pos else pos + self.max_chars
            lo, hi = _trim(self.text, pos, end)
            if lo < hi:
                yield lo, hi
            pos = end
