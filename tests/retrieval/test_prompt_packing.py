"""Prompt packing measured by the real SmolLM2 tokenizer, and the documented approximation for remote models."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from llm_fixtures import CHATML, load_smollm2
from retrieval_corpus import FILES_SCAN, TRUSTED_DOMAINS, URLAUB, stdlib_docstrings

from appliance.llm_config import DEFAULT_TEMPLATE
from quart_app.runtimes.llm_backend import approximate_token_count
from quart_app.runtimes.llm_llama import LlamaBackend
from quart_app.services.context_assembly import ContextPiece
from quart_app.services.errors import PromptTooLongError
from quart_app.services.prompt_packing import CUT_MARK, pack_prompt, render

pytestmark = pytest.mark.slow

PIECES = [ContextPiece(f"py/{name}", f"Python module {name}", text) for name, text in stdlib_docstrings(40)]


@pytest.fixture(scope="module")
async def llama() -> AsyncIterator[LlamaBackend]:
    backend = load_smollm2()
    yield backend
    await backend.aclose()


@pytest.mark.parametrize("n_ctx", [200, 350, 600, 1000, 1700, 4000])
@pytest.mark.parametrize("template", [DEFAULT_TEMPLATE, CHATML])
def test_packing_never_exceeds_the_budget(llama: LlamaBackend, n_ctx: int, template: str) -> None:
    max_new = 64
    packed = pack_prompt(
        template, "What does the module do?", PIECES, llama.count_tokens, llama.plain_text, n_ctx, max_new
    )
    real = llama.count_tokens(packed.prompt)
    assert real == packed.prompt_tokens
    assert real <= n_ctx - max_new
    assert not packed.question_truncated
    if n_ctx >= 600:
        assert packed.pieces_used >= 1
        # greedy: the best piece goes in first, and sources follow the pieces' order
        assert packed.sources[0] == PIECES[0].source_id
        assert PIECES[0].render() in packed.prompt
    used = [p for p in PIECES if p.render() in packed.prompt]
    assert [p.source_id for p in used] == packed.sources
    if packed.pieces_used < len(PIECES):
        # the budget is really used: the smallest piece left out would not have fitted
        smallest = min((p for p in PIECES if p not in used), key=lambda p: llama.count_tokens(p.render()))
        assert real + llama.count_tokens(smallest.render()) > n_ctx - max_new - 8


def test_each_piece_carries_its_title(llama: LlamaBackend) -> None:
    pieces = [ContextPiece("a", "Nextcloud: trusted domains", TRUSTED_DOMAINS[1])]
    packed = pack_prompt(DEFAULT_TEMPLATE, "q?", pieces, llama.count_tokens, llama.plain_text, 2048, 64)
    assert "Nextcloud: trusted domains:\n\n" + TRUSTED_DOMAINS[1] in packed.prompt
    assert packed.sources == ["a"]


def test_the_question_is_cut_only_when_template_and_question_cannot_fit(llama: LlamaBackend) -> None:
    question = " ".join(["Why does the server refuse my requests from an untrusted domain?"] * 30)
    base = llama.count_tokens(render(DEFAULT_TEMPLATE, "", ""))
    n_ctx = base + 100 + 64
    packed = pack_prompt(DEFAULT_TEMPLATE, question, PIECES, llama.count_tokens, llama.plain_text, n_ctx, 64)
    assert packed.question_truncated
    assert packed.pieces_used == 0 and packed.sources == []
    assert llama.count_tokens(packed.prompt) <= n_ctx - 64
    assert packed.prompt.startswith(DEFAULT_TEMPLATE.split("{context}")[0])
    assert "Why does the server" in packed.prompt


def test_a_template_that_cannot_fit_is_a_clear_error(llama: LlamaBackend) -> None:
    with pytest.raises(PromptTooLongError, match=r"^Context length is too small even to fit the template: n_ctx 80"):
        pack_prompt(DEFAULT_TEMPLATE, "q", PIECES, llama.count_tokens, llama.plain_text, 80, 64)


def test_the_approximation_over_counts_the_real_tokenizer(llama: LlamaBackend) -> None:
    texts = [t for _, t in stdlib_docstrings(60)] + [URLAUB[1], TRUSTED_DOMAINS[1], FILES_SCAN[1]]
    texts.append("Die Übertragungsgeschwindigkeit der Datenbankverbindung wurde verdoppelt: 12.345,67 € pro Größe.")
    for text in texts:
        real = llama.count_tokens(text) - 1  # without BOS
        assert approximate_token_count(text) >= real, text[:60]
    packed = pack_prompt(DEFAULT_TEMPLATE, "What is it?", PIECES, approximate_token_count, str, 1200, 100)
    assert llama.count_tokens(packed.prompt) <= 1200 - 100


async def test_max_tokens_just_below_n_ctx_trims_passages_and_never_cuts_the_question() -> None:
    """An accepted config (max_tokens < n_ctx) whose answer reserve leaves too little for a short question: the admin
    is told which setting to change, where the question was cut to its first word and another question answered."""
    backend = load_smollm2(n_ctx=512, max_tokens=486)
    question = "What does the module do?"
    try:
        with pytest.raises(PromptTooLongError) as raised:
            pack_prompt(CHATML, question, PIECES, backend.count_tokens, backend.plain_text, 512, backend.max_tokens)
        needed = backend.count_tokens(render(CHATML, "", question))
        assert str(raised.value) == (
            f"Context length is too small for the question: n_ctx 512 minus max_tokens 486 leaves 26 tokens, the"
            f" template and the question need {needed} before any passage; lower llm.<backend>.max_tokens well below"
            f" {512 - needed} or raise llm.<backend>.n_ctx"
        )
        # a reserve that leaves room for the question: passages give way, the question stays whole
        packed = pack_prompt(CHATML, question, PIECES, backend.count_tokens, backend.plain_text, 512, 400)
        assert not packed.question_truncated and f"Question: {question}<|im_end|>" in packed.prompt
        assert 0 < packed.pieces_used < len(PIECES)
        assert backend.count_tokens(packed.prompt) + 400 <= 512
        assert await backend.generate(packed.prompt, "alice", ["<|im_end|>"])
        # a question longer than the answer's reserve is a pasted text: cut to fit, as before
        pasted = " ".join(["Why does the server refuse my requests from an untrusted domain?"] * 25)
        assert 200 < backend.count_tokens(pasted) < 512 - needed
        packed = pack_prompt(CHATML, pasted, PIECES, backend.count_tokens, backend.plain_text, 512, 200)
        assert packed.question_truncated and backend.count_tokens(packed.prompt) <= 512 - 200
    finally:
        await backend.aclose()


def test_when_no_passage_fits_whole_the_best_one_goes_in_cut_short(llama: LlamaBackend) -> None:
    """max_tokens near n_ctx leaves room for less than any passage: the best one, cut after a word, rather than a
    prompt with no context at all (an answer from nothing, with no sources)."""
    question = "What does the module do?"
    packed = pack_prompt(CHATML, question, PIECES, llama.count_tokens, llama.plain_text, 512, 460)
    assert packed.sources == [PIECES[0].source_id] and packed.pieces_used == 1
    assert llama.count_tokens(packed.prompt) == packed.prompt_tokens <= 512 - 460
    assert not packed.question_truncated and f"Question: {question}<|im_end|>" in packed.prompt
    kept = packed.prompt.split(f"{PIECES[0].title}:\n\n", 1)[1].split(CUT_MARK, 1)[0]
    assert PIECES[0].text.startswith(kept) and PIECES[0].text[len(kept)].isspace()  # cut after a whole word
