"""The llama section's prompt template on a fixed question: `auto` (the GGUF's own chat template, shipped), the
ChatML text the configs shipped before it and upstream's plain-text default, each answered by the real SmolLM2 GGUF.

    .venv/bin/python bench/llm_chat_template.py [--runs 3] [--threads 1]

The shipped CPU config's llama section (temperature 0 so that every run gives the same text), its template replaced
by each candidate; the context is two short documents packed as AnswerService packs them. Prints the answer time
(median of the runs, wall clock, model loaded), the answer's tokens and its text.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "retrieval")]

from llm_fixtures import ANSWER_DOCUMENTS  # noqa: E402

from appliance.config_files import CONFIGS_DIR  # noqa: E402
from appliance.llm_config import DEFAULT_NO_CTX_TEMPLATE, DEFAULT_TEMPLATE, LlamaConfig  # noqa: E402
from appliance.model_catalogue import load_catalogue, resolve_model_files  # noqa: E402
from quart_app.runtimes.llm_llama import LlamaBackend  # noqa: E402
from quart_app.services.answer import prompt_templates  # noqa: E402
from quart_app.services.prompt_packing import pack_prompt  # noqa: E402

QUESTION = "Which file lists the trusted domains?"
CHATML_SHIPPED_BEFORE = (
    "<|im_start|>system\nAnswer based only on this context and do not add any imaginative details. Make sure to use"
    " the same language as the question in your answer.\n{context}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>"
    "\n<|im_start|>assistant\n"
)
DOCUMENTS = ANSWER_DOCUMENTS[:2]


async def measure(runs: int, threads: int) -> None:
    shipped = yaml.safe_load((CONFIGS_DIR / "config.cpu.yaml").read_text())["llm"]["llama"]
    base = LlamaConfig.model_validate({**shipped, "temperature": 0.0, "n_threads": threads})
    model = resolve_model_files(load_catalogue()[base.model], Path("/nonexistent")).model
    variants = {
        "auto (shipped)": base,
        "ChatML written out (shipped before)": base.model_copy(
            update={"template": CHATML_SHIPPED_BEFORE, "end_separator": "<|im_end|>"}
        ),
        "plain default": base.model_copy(
            update={"template": DEFAULT_TEMPLATE, "no_ctx_template": DEFAULT_NO_CTX_TEMPLATE, "end_separator": ""}
        ),
    }
    llama = LlamaBackend(model, base)
    try:
        for name, config in variants.items():
            templates = prompt_templates(config, llama)
            packed = pack_prompt(
                templates.template, QUESTION, DOCUMENTS, llama.count_tokens, llama.plain_text, llama.n_ctx,
                llama.max_tokens, templates.context_tokens, templates.in_document_order,
            )  # fmt: skip
            stop = [templates.end_separator] if templates.end_separator else []
            times, answer = [], ""
            for _ in range(runs):
                started = time.perf_counter()
                answer = await llama.generate(packed.prompt, "bench", stop)
                times.append(time.perf_counter() - started)
            print(
                f"{name}: prompt {packed.prompt_tokens} tokens, answer {llama.count_tokens(answer) - 1} tokens"
                f" (max {llama.max_tokens}), median {statistics.median(times):.2f} s of {runs}\n  {answer!r}"
            )
    finally:
        await llama.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"{QUESTION!r} over {len(DOCUMENTS)} documents; SmolLM2-135M-Instruct Q4_1, {args.threads} thread(s)")
    asyncio.run(measure(args.runs, args.threads))


if __name__ == "__main__":
    main()
