"""Answers that repeat themselves: the shipped llama section (SmolLM2-135M-Instruct, template auto) on six fixed
questions over four short documents, each answered once, greedy by default so that every run writes the same text.

    .venv/bin/python bench/llm_repetition.py [--threads 1] [--max-tokens 512] [--temperature 0] [--seed 1]
        [--question TEXT ...]

Prints per question the answer's tokens, whether it reached max_tokens, the seconds it took (wall clock, model
loaded) and its last 120 characters; then the totals. Run it on two commits to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "retrieval")]

from llm_fixtures import ANSWER_DOCUMENTS  # noqa: E402

from appliance.config_files import CONFIGS_DIR  # noqa: E402
from appliance.llm_config import LlamaConfig  # noqa: E402
from appliance.model_catalogue import load_catalogue, resolve_model_files  # noqa: E402
from quart_app.runtimes.llm_llama import LlamaBackend  # noqa: E402
from quart_app.services.answer import prompt_templates  # noqa: E402
from quart_app.services.prompt_packing import pack_prompt  # noqa: E402

QUESTIONS = [
    "Which file lists the trusted domains?",
    "How long are database dumps kept?",
    "How do I make my tool print more output with -v?",
    "Which ports are open and to whom?",
    "What happens when the Host header is not trusted?",
    "List the flags that can be combined.",
]


async def measure(threads: int, max_tokens: int, temperature: float, seed: int, questions: list[str]) -> None:
    shipped = yaml.safe_load((CONFIGS_DIR / "config.cpu.yaml").read_text())["llm"]["llama"]
    config = LlamaConfig.model_validate(
        {**shipped, "temperature": temperature, "n_threads": threads, "max_tokens": max_tokens}
    )
    llama = LlamaBackend(resolve_model_files(load_catalogue()[config.model], Path("/nonexistent")).model, config)
    llama._llm.set_seed(seed)  # white box: the sampler's seed, for a temperature above 0
    total_tokens, total_s, capped = 0, 0.0, 0
    try:
        templates = prompt_templates(config, llama)
        stop = [templates.end_separator] if templates.end_separator else []
        for question in questions:
            packed = pack_prompt(
                templates.template, question, ANSWER_DOCUMENTS, llama.count_tokens, llama.plain_text, llama.n_ctx,
                llama.max_tokens, templates.context_tokens, templates.in_document_order,
            )  # fmt: skip
            started = time.perf_counter()
            answer = await llama.generate(packed.prompt, "bench", stop)
            seconds = time.perf_counter() - started
            tokens = llama.count_tokens(answer) - 1
            at_cap = tokens >= max_tokens - 2  # strip() and re-tokenising may shift the count by a token or two
            total_tokens, total_s, capped = total_tokens + tokens, total_s + seconds, capped + at_cap
            print(f"{question!r}: {tokens} tokens{' (max_tokens)' if at_cap else ''}, {seconds:.2f} s")
            print(f"  ...{answer[-120:]!r}")
    finally:
        await llama.aclose()
    print(f"total: {total_tokens} answer tokens, {total_s:.1f} s; {capped} of {len(questions)} at max_tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--temperature", type=float, default=0.0, help="the shipped section's is 0.2")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--question", action="append", help="ask this instead of the six (repeatable)")
    args = parser.parse_args()
    questions = args.question or QUESTIONS
    print(
        f"{len(questions)} questions over {len(ANSWER_DOCUMENTS)} documents; SmolLM2-135M-Instruct Q4_1,"
        f" {args.threads} thread, temperature {args.temperature:g}, seed {args.seed}"
    )
    asyncio.run(measure(args.threads, args.max_tokens, args.temperature, args.seed, questions))


if __name__ == "__main__":
    main()
