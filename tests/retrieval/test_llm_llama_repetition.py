"""The shipped llama section (SmolLM2-135M-Instruct, template auto, max_tokens 512; greedy so that each run writes
the same text) on questions it answers in a loop: the answer stops after the first copy, streamed or not, with one
INFO line; a table it copies from a document passes whole."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import yaml
from llm_fixtures import ANSWER_DOCUMENTS, smollm2_path

from appliance.config_files import CONFIGS_DIR
from appliance.llm_config import LlamaConfig
from quart_app.runtimes.code_fences import closing_fence
from quart_app.runtimes.llm_llama import LlamaBackend
from quart_app.services.answer import Templates, prompt_templates
from quart_app.services.context_assembly import ContextPiece
from quart_app.services.prompt_packing import pack_prompt

pytestmark = pytest.mark.slow


def shipped_config(**changes: object) -> LlamaConfig:
    section = yaml.safe_load((CONFIGS_DIR / "config.cpu.yaml").read_text())["llm"]["llama"]
    return LlamaConfig.model_validate({**section, "temperature": 0.0, "n_threads": 1, **changes})


@pytest.fixture(scope="module")
async def shipped() -> AsyncIterator[tuple[LlamaBackend, Templates]]:
    config = shipped_config()
    assert config.max_tokens == 512
    backend = LlamaBackend(smollm2_path(), config)
    yield backend, prompt_templates(config, backend)
    await backend.aclose()


def prompt_for(
    llama: LlamaBackend, templates: Templates, question: str, more_documents: tuple[ContextPiece, ...] = ()
) -> str:
    documents = [*ANSWER_DOCUMENTS, *more_documents]
    return pack_prompt(
        templates.template, question, documents, llama.count_tokens, llama.plain_text, llama.n_ctx,
        llama.max_tokens, templates.context_tokens, templates.in_document_order,
    ).prompt  # fmt: skip


async def test_an_answer_that_repeats_a_line_stops_after_its_first_copy(
    shipped: tuple[LlamaBackend, Templates], caplog: pytest.LogCaptureFixture
) -> None:
    """Before: 511 tokens, "-v - port" on 90 lines (30 s of CPU)."""
    llama, templates = shipped
    prompt = prompt_for(llama, templates, "List the flags that can be combined.")
    with caplog.at_level(logging.INFO, logger="quart_app.runtimes.repetition"):
        answer = await llama.generate(prompt, "alice", [templates.end_separator])
    assert llama.count_tokens(answer) - 1 < 150
    lines = answer.splitlines()
    assert lines[-1] == "-v - port" and lines.count("-v - port") == 1
    [record] = caplog.records
    assert record.levelno == logging.INFO and "repeating itself" in record.getMessage()
    assert "port" not in record.getMessage()  # no answer text in the log
    streamed = [piece async for piece in llama.stream(prompt, "alice", [templates.end_separator])]
    assert "".join(streamed).strip() == answer


def ends_with_one_restart_the_server(prompt: str, answer: str) -> None:
    assert "Restart the server" not in prompt  # the item is the model's, not a document's
    assert answer.count("Restart the server:") == 1 and answer.endswith("Restart the server:")


def is_the_first_restart_item(prompt: str, answer: str) -> None:
    assert answer == "1. Restart server 10."


def has_no_second_item(prompt: str, answer: str) -> None:
    assert "2." not in answer


def is_the_first_restart_item_with_the_whole_table(prompt: str, answer: str) -> None:
    assert all(f"| Row {n} |" in prompt for n in range(1, 101))
    assert answer == "1. Restart server 10."


def is_one_check_comment_in_a_closed_block(prompt: str, answer: str) -> None:
    assert answer == "```\n# 1. Check:\n```"


# a document whose 100-row table puts every number up to 100 in the prompt
RACK_ROWS = ContextPiece(
    "inv: racks",
    "Inventory: rack rows",
    "| row | rack | owner |\n|---|---|---|\n"
    + "".join(f"| Row {n} | R{n % 7} | team {'abcde'[n % 5]} |\n" for n in range(1, 101)),
)


@dataclass(frozen=True)
class NumberedLoop:
    """A question SmolLM2 answers with a numbered list in a loop, and what the guard leaves of it."""

    question: str
    most_tokens: int  # the answer stays under this many tokens
    log_says: str  # how the log names the loop
    log_hides: str | None  # a word of the answer the log must not hold
    check: Callable[[str, str], None]  # asserts on the prompt and the answer
    more_documents: tuple[ContextPiece, ...] = ()  # besides ANSWER_DOCUMENTS


NUMBERED_LOOPS = {
    # before: 511 tokens, "- 1. Restart the server:" counted to 45 (units of 10 tokens, too short for near copies)
    "same-text": NumberedLoop(
        "Give numbered steps to restart each server listed in the firewall table.",
        100, "numbered items of the same text", "Restart", ends_with_one_restart_the_server,
    ),
    # before: 511 tokens, "N. Restart server N+9." counted to 58 (each item a number apart: no rule saw a loop)
    "alike": NumberedLoop(
        "Give numbered steps to restart server 1 to server 10.",
        20, "list items alike", "Restart", is_the_first_restart_item,
    ),
    # before: 483 tokens, "N. Restart server N+9." counted to 21 and again from 10: each next number was the table's
    "alike-numbers-in-a-table": NumberedLoop(
        "Give numbered steps to restart server 1 to server 10.",
        20, "list items alike", "Restart", is_the_first_restart_item_with_the_whole_table, (RACK_ROWS,),
    ),
    # before: 514 tokens, "# N. Check:" counted to 58 inside a code block (its lines were all code to the guard)
    "counted-up-in-a-code-block": NumberedLoop(
        "Write a code block with numbered comments, one per check of each log file: '#  1. Check: ...'.",
        20, "numbered items of the same text", "Check", is_one_check_comment_in_a_closed_block,
    ),
    # before: 511 tokens, "1." to "124." alone on their lines (a number a line, no text for the rule to compare)
    "counted-up-without-text": NumberedLoop(
        "Give numbered steps to check each log file.", 20, "numbered items of the same text", None, has_no_second_item
    ),
}  # fmt: skip


@pytest.mark.parametrize("loop", NUMBERED_LOOPS.values(), ids=NUMBERED_LOOPS.keys())
async def test_numbered_items_in_a_loop_stop_after_the_first(
    shipped: tuple[LlamaBackend, Templates], caplog: pytest.LogCaptureFixture, loop: NumberedLoop
) -> None:
    llama, templates = shipped
    prompt = prompt_for(llama, templates, loop.question, loop.more_documents)
    with caplog.at_level(logging.INFO, logger="quart_app.runtimes.repetition"):
        answer = await llama.generate(prompt, "alice", [templates.end_separator])
    assert llama.count_tokens(answer) - 1 < loop.most_tokens
    loop.check(prompt, answer)
    [record] = caplog.records
    assert loop.log_says in record.getMessage()
    assert loop.log_hides is None or loop.log_hides not in record.getMessage()


async def test_a_table_copied_from_a_document_passes_whole_streamed_line_by_line(
    shipped: tuple[LlamaBackend, Templates], caplog: pytest.LogCaptureFixture
) -> None:
    """The stream holds back only the line or sentence in progress (a repeat found later may cut it)."""
    llama, templates = shipped
    prompt = prompt_for(llama, templates, "Which file lists the trusted domains?")
    with caplog.at_level(logging.INFO, logger="quart_app.runtimes.repetition"):
        pieces = [piece async for piece in llama.stream(prompt, "alice", [templates.end_separator])]
    answer = "".join(pieces).strip()
    assert "|---|---|---|" in answer and answer.endswith("| 22 | SSH | admin VPN |")
    assert not caplog.records
    table_rows = [piece for piece in pieces if piece.startswith("|")]
    assert len(table_rows) >= 4 and all(row.endswith("|\n") for row in table_rows[:-1])


async def test_an_answer_cut_by_max_tokens_inside_a_code_block_ends_with_the_block_closed(
    shipped: tuple[LlamaBackend, Templates],
) -> None:
    """Before: the answer ended in the block ("```\\nphp -v") and the Assistant rendered the rest of its page as
    code. max_tokens is set to end the answer two tokens after the block the whole answer opens."""
    llama, templates = shipped
    prompt = prompt_for(llama, templates, "How do I make my tool print more output with -v?")
    whole = await llama.generate(prompt, "alice", [templates.end_separator])
    opened = whole.index("```\n") + len("```\n")
    cut_config = shipped_config(max_tokens=llama.count_tokens(whole[:opened]) - 1 + 2)
    cut = LlamaBackend(smollm2_path(), cut_config)
    try:
        streamed = [piece async for piece in cut.stream(prompt, "alice", [templates.end_separator])]
    finally:
        await cut.aclose()
    answer = "".join(streamed)
    assert answer.endswith("\n```") and closing_fence(answer) == ""
    assert whole.startswith(answer.removesuffix("\n```").strip())  # the text itself is untouched
    assert streamed[-1] == "\n```"  # an addition at the end of the stream, nothing taken back
