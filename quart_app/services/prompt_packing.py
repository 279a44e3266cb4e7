"""Fit the best chunks into the LLM's context, measured by the active LLM's own tokenizer."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from quart_app.services.context_assembly import ContextPiece, assemble
from quart_app.services.errors import PromptTooLongError

log = logging.getLogger(__name__)

PIECE_SEPARATOR = "\n\n"
CUT_MARK = " […]"  # ends a passage cut to fit: the model (and a reader of the prompt) sees text is missing
_PLACEHOLDER = re.compile(r"\{context\}|\{question\}")


@dataclass(frozen=True, slots=True)
class PackedPrompt:
    """The prompt to send, the sources whose chunks are in it (best first), and its measured size."""

    prompt: str
    sources: list[str]
    pieces_used: int
    prompt_tokens: int
    question_truncated: bool


def render(template: str, context: str, question: str) -> str:
    """Fill {context} and {question} of the template in one pass (not str.format: other braces stay literal), so a
    placeholder inside a document or the question (an indexed config.yaml) is not filled in turn."""
    values = {"{context}": context, "{question}": question}
    return _PLACEHOLDER.sub(lambda match: values[match.group(0)], template)


def _longest_prefix(count: int, fits: Callable[[int], bool]) -> int:
    """The largest n <= count with fits(n), for a `fits` that holds up to some n and fails after (binary search)."""
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _truncate_question(question: str, fits: Callable[[str], bool]) -> str:
    """The longest word prefix of the question that fits, then as much of the next word as fits: Chinese, Japanese
    or Thai have no spaces, so one "word" can be a whole paragraph (or the whole question)."""
    words = question.split()
    whole = _longest_prefix(len(words), lambda n: fits(" ".join(words[:n])))
    kept = " ".join(words[:whole])
    if whole < len(words):
        head, cut = f"{kept} " if kept else "", words[whole]
        part = _longest_prefix(len(cut), lambda n: fits(head + cut[:n]))
        if part:
            kept = head + cut[:part]
    return kept


def _cut_to_fit(piece: ContextPiece, fits: Callable[[ContextPiece], bool]) -> ContextPiece | None:
    """The longest start of the piece's text that fits, cut after a whole word where one fits and marked as cut;
    None when not even its title and one character do."""

    def cut(length: int) -> ContextPiece:
        return replace(piece, text=piece.text[:length].rstrip() + CUT_MARK)

    kept = _longest_prefix(len(piece.text), lambda length: fits(cut(length)))
    if kept == 0:
        return None
    word_end = re.search(r"\s\S*$", piece.text[:kept]) if kept < len(piece.text) else None
    if word_end is not None and word_end.start() > 0 and fits(cut(word_end.start())):
        kept = word_end.start()
    return cut(kept)


def pack_prompt(
    template: str,
    question: str,
    pieces: Sequence[ContextPiece],
    count_tokens: Callable[[str], int],
    plain_text: Callable[[str], str],
    n_ctx: int,
    max_new_tokens: int,
    context_tokens: int | None = None,
    in_document_order: bool = False,
) -> PackedPrompt:
    """Best pieces first, each skipped when it does not fit (when none fits whole, the best one goes in cut after a
    word, marked with CUT_MARK); every candidate prompt is measured whole, so the result never exceeds
    n_ctx - max_new_tokens, nor template + question + `context_tokens`. The question is cut only when the template
    plus question cannot fit and the question is longer than max_tokens (a pasted text); a shorter one crowded out by
    the answer's reserve is the configuration's fault, and PromptTooLongError names the setting.
    `in_document_order` renders the chosen pieces grouped per source in document order with overlaps removed
    (context_assembly.assemble); sources stay listed best first. The question and the context go in through
    `plain_text` (the LLM's), so that only the template can hold control tokens."""
    limit = n_ctx - max_new_tokens
    question = plain_text(question)
    template_only = count_tokens(render(template, "", ""))
    if template_only > limit:
        raise PromptTooLongError(
            f"Context length is too small even to fit the template: n_ctx {n_ctx} minus max_tokens {max_new_tokens}"
            f" leaves {limit} tokens, the template alone needs {template_only};"
            " raise llm.<backend>.n_ctx or lower max_tokens"
        )
    truncated = False
    with_question = count_tokens(render(template, "", question))
    if with_question > limit:
        if with_question - template_only < max_new_tokens:
            # a question shorter than the answer's reserve is crowded out by the setting: cut, another one is answered
            raise PromptTooLongError(
                f"Context length is too small for the question: n_ctx {n_ctx} minus max_tokens {max_new_tokens} leaves"
                f" {limit} tokens, the template and the question need {with_question} before any passage;"
                f" lower llm.<backend>.max_tokens well below {n_ctx - with_question} or raise llm.<backend>.n_ctx"
            )
        original = question
        question = _truncate_question(question, lambda q: count_tokens(render(template, "", q)) <= limit)
        truncated = True
        log.warning("question cut from %d to %d characters to fit n_ctx %d", len(original), len(question), n_ctx)
        if not question:
            raise PromptTooLongError(
                f"Context length is too small even to fit the template and the first character of the question"
                f" (n_ctx {n_ctx}, max_tokens {max_new_tokens}); raise llm.<backend>.n_ctx or lower max_tokens"
            )
    chosen: list[ContextPiece] = []
    prompt = render(template, "", question)
    total = count_tokens(prompt)
    if context_tokens is not None:
        limit = min(limit, total + context_tokens)
    if not truncated:
        for piece in pieces:
            # cheap pre-check: a piece that alone exceeds what is left cannot fit (BOS/boundary slack of 2 tokens)
            if count_tokens(plain_text(piece.render())) - 2 > limit - total:
                continue
            # measure the whole candidate prompt: token counts of parts do not add up exactly at the joins
            shown = assemble([*chosen, piece]) if in_document_order else [*chosen, piece]
            candidate = render(template, plain_text(PIECE_SEPARATOR.join(p.render() for p in shown)), question)
            candidate_total = count_tokens(candidate)
            if candidate_total <= limit:
                chosen.append(piece)
                prompt, total = candidate, candidate_total
        if pieces and not chosen:
            # not one passage fits whole (max_tokens near n_ctx): the best one cut short, rather than no context

            def prompt_with(piece: ContextPiece) -> str:
                return render(template, plain_text(piece.render()), question)

            cut = _cut_to_fit(pieces[0], lambda piece: count_tokens(prompt_with(piece)) <= limit)
            if cut is not None:
                chosen.append(cut)
                prompt = prompt_with(cut)
                total = count_tokens(prompt)
    sources = list(dict.fromkeys(p.source_id for p in chosen))
    return PackedPrompt(prompt, sources, len(chosen), total, truncated)
