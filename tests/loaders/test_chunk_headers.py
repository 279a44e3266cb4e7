"""Chunks of structured documents (Markdown, reStructuredText, HTML through its loader) carry their heading path,
small sections are merged up to the budget, and every word of the document lands in a chunk."""

import re
from pathlib import Path

from tokenizers import Tokenizer

from quart_app.chunking import Chunk, TokenChunker, embedding_text
from quart_app.chunking.chunker import HEADER_SHARE
from quart_app.chunking.headings import find_headings
from quart_app.loaders import extract_text

NARGS_PATH = "Click Guide > Options > Multiple values"
MARKDOWN = """# Click Guide

Click is a package for creating command line interfaces with as little code as necessary.

## Options

Options are added to commands with the option decorator. They are optional, have a default value and may be
given in any order on the command line. {options_body}

### Multiple values

An option can take a fixed number of values with nargs, or be repeated with multiple set to true. {nargs_body}

```sh
# run the tool twice
tool --name a --name b
```

## Arguments

Arguments are positional and required unless a default is given. {arguments_body}
"""

RST = """=============
Click Guide
=============

Click is a package for creating command line interfaces.

Options
=======

Options are added to commands with the option decorator. {options_body}

Multiple values
---------------

An option can take a fixed number of values with nargs. {nargs_body}

Arguments
=========

Arguments are positional and required unless a default is given. {arguments_body}
"""

HTML = """<!DOCTYPE html><html><head><title>Quickstart - Requests documentation</title>
<style>h2 {{ color: red }}</style></head><body>
<h1>Quickstart<a class="headerlink" href="#quickstart">\u00b6</a></h1><p>Eager to get started? This page gives an
introduction.</p>
<h2>Make a Request<a class="headerlink" href="#make">\u00b6</a></h2><p>Making a request is very simple.
{request_body}</p>
<h3>Passing Parameters In URLs</h3><p>You often want to send data in the query string with params.
{params_body}</p>
<h2>Response Content</h2><p>We can read the content of the server's response. {response_body}</p>
</body></html>"""


def _filler(topic: str, sentences: int) -> str:
    return " ".join(f"Sentence {n} explains more about {topic} and how it behaves." for n in range(sentences))


def _chunk_with(chunks: list[Chunk], phrase: str) -> Chunk:
    return next(c for c in chunks if phrase in c.text)


def _assert_every_word_in_a_chunk(text: str, chunks: list[Chunk]) -> None:
    covered = bytearray(len(text))
    for chunk in chunks:
        assert text[chunk.start : chunk.start + len(chunk.text)] == chunk.text
        covered[chunk.start : chunk.start + len(chunk.text)] = b"\x01" * len(chunk.text)
    missed = [m.group() for m in re.finditer(r"\S+", text) if not all(covered[m.start() : m.end()])]
    assert missed == []


def _assert_budget(chunks: list[Chunk], chunker: TokenChunker) -> None:
    for chunk in chunks:
        assert chunk.token_count == chunker.count_tokens(embedding_text(chunk.header, chunk.text))
        assert 0 < chunk.token_count <= chunker.chunk_tokens
        assert chunker.count_tokens(chunk.header) <= chunker.chunk_tokens // HEADER_SHARE


def test_markdown_chunks_know_their_heading_path(minilm_tokenizer: Tokenizer) -> None:
    text = MARKDOWN.format(
        options_body=_filler("options", 12), nargs_body=_filler("nargs", 25), arguments_body=_filler("arguments", 12)
    ).strip()
    chunker = TokenChunker(minilm_tokenizer, 128, 16)
    chunks = list(chunker.split(text, "text/markdown"))
    _assert_budget(chunks, chunker)
    _assert_every_word_in_a_chunk(text, chunks)
    # a chunk inside the nargs section, after its heading line: the whole path is its header
    assert _chunk_with(chunks, "Sentence 9 explains more about nargs").header == NARGS_PATH
    assert _chunk_with(chunks, "Sentence 10 explains more about arguments").header == "Click Guide > Arguments"
    # the first chunk holds the title line itself, so nothing is repeated in its header
    assert chunks[0].text.startswith("# Click Guide") and chunks[0].header == ""
    # a shell comment in a code fence is no heading
    assert all("run the tool twice" not in c.header for c in chunks)


def test_a_chunk_over_several_sections_is_headed_by_what_encloses_them_all(minilm_tokenizer: Tokenizer) -> None:
    text = MARKDOWN.format(options_body="", nargs_body="", arguments_body="").strip()
    chunks = list(TokenChunker(minilm_tokenizer, 254, 25).split(text, "text/markdown"))
    # the whole guide fits one chunk: the title is in its text, so its header is empty
    assert [(c.header, c.text) for c in chunks] == [("", text)]


def test_rst_levels_follow_the_order_of_the_underline_styles(minilm_tokenizer: Tokenizer) -> None:
    text = RST.format(
        options_body=_filler("options", 12), nargs_body=_filler("nargs", 25), arguments_body=_filler("arguments", 12)
    ).strip()
    chunker = TokenChunker(minilm_tokenizer, 128, 16)
    chunks = list(chunker.split(text, "text/x-rst"))
    _assert_budget(chunks, chunker)
    _assert_every_word_in_a_chunk(text, chunks)
    assert _chunk_with(chunks, "Sentence 9 explains more about nargs").header == NARGS_PATH
    assert _chunk_with(chunks, "Sentence 10 explains more about arguments").header == "Click Guide > Arguments"


def test_html_headings_reach_the_chunker_through_the_loader(minilm_tokenizer: Tokenizer, tmp_path: Path) -> None:
    page = tmp_path / "quickstart"
    page.write_text(
        HTML.format(
            request_body=_filler("requests", 10),
            params_body=_filler("params", 50),
            response_body=_filler("content", 10),
        ),
        encoding="utf-8",
    )
    text = extract_text(page, "text/html")
    chunker = TokenChunker(minilm_tokenizer, 254, 25)
    chunks = list(chunker.split(text, "text/html"))
    _assert_budget(chunks, chunker)
    _assert_every_word_in_a_chunk(text, chunks)
    # the page title is the top of every path, the pilcrow permalinks are dropped from headers
    assert (
        _chunk_with(chunks, "Sentence 30 explains more about params").header
        == "Quickstart - Requests documentation > Quickstart > Make a Request > Passing Parameters In URLs"
    )
    assert all("color" not in c.text for c in chunks)


def test_small_sections_are_merged_with_the_end_of_a_big_one(minilm_tokenizer: Tokenizer) -> None:
    # a section too big for one chunk, then five small ones: its last part and the small ones share a chunk
    big = "## Big section\n\n" + "\n\n".join(_filler(f"part {p}", 8) for p in range(3))
    small = [f"## Small section {n}\n\nA short note number {n} about one detail." for n in range(5)]
    text = "# Manual\n\n" + "\n\n".join([big, *small])
    chunker = TokenChunker(minilm_tokenizer, 254, 0)
    chunks = list(chunker.split(text, "text/markdown"))
    _assert_budget(chunks, chunker)
    _assert_every_word_in_a_chunk(text, chunks)
    assert len(chunks) == 2
    assert "about part 2" in chunks[1].text and chunks[1].text.endswith("about one detail.")
    assert chunks[1].header == "Manual"


def test_many_small_sections_fill_the_budget(minilm_tokenizer: Tokenizer) -> None:
    # a reference page of short entries: chunks average ~60 tokens if each section stays alone
    sections = [f"### `option_{n}`\n\nSets value {n} of the tool; the default is {n * 3}." for n in range(80)]
    text = "# Reference\n\n## Options\n\n" + "\n\n".join(sections)
    chunker = TokenChunker(minilm_tokenizer, 254, 25)
    chunks = list(chunker.split(text, "text/markdown"))
    _assert_budget(chunks, chunker)
    _assert_every_word_in_a_chunk(text, chunks)
    assert sum(c.token_count for c in chunks[:-1]) / len(chunks[:-1]) > 200


def test_a_long_heading_path_keeps_the_title_and_the_innermost_section(minilm_tokenizer: Tokenizer) -> None:
    titles = [f"Level {n} heading with quite a few words in its long descriptive title" for n in range(1, 7)]
    text = "\n\n".join("#" * n + " " + title for n, title in enumerate(titles, start=1))
    text += "\n\n" + _filler("depth", 40)
    chunker = TokenChunker(minilm_tokenizer, 128, 16)
    chunks = list(chunker.split(text, "text/markdown"))
    _assert_budget(chunks, chunker)
    _assert_every_word_in_a_chunk(text, chunks)
    header = _chunk_with(chunks, "Sentence 30 explains").header
    assert header.startswith("Level 1 heading") and "Level 2" not in header
    # cut to the budget's share, after the innermost title when even the two do not fit
    assert chunker.count_tokens(header) <= 128 // HEADER_SHARE


def test_plain_text_chunks_have_no_header_and_the_full_budget(minilm_tokenizer: Tokenizer) -> None:
    text = "# Not a heading in a text file\n\n" + _filler("plain", 60)
    chunks = list(TokenChunker(minilm_tokenizer, 128, 0).split(text, "text/plain"))
    assert {c.header for c in chunks} == {""}
    assert max(c.token_count for c in chunks) > 110


def test_markdown_heading_titles_lose_closing_marks_only() -> None:
    text = "# Learn C#\n\n## Usage ##\n\n### ###\n\n#hashtag\n\n```\n# comment\n```\n\n# After the fence"
    assert [(h.level, h.title) for h in find_headings(text, "text/markdown")] == [
        (1, "Learn C#"),
        (2, "Usage"),
        (1, "After the fence"),
    ]
