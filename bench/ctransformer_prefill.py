"""The ctransformer backend's prompt evaluation in ctransformers' 8-token batches, called from Python one at a time (so
that a stop is seen between them), against ctransformers' own single call, on a GGML GPT-2 the bench writes (random
weights, small: the Python overhead per batch shows as much as it can). Best of the rounds, each on a new prompt (no
prefix kept from the round before), one token generated.

    .venv/bin/python bench/ctransformer_prefill.py [--rounds 7] [--tokens 1500] [--embd 256] [--layers 4]

Prints the seconds per prompt for both and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "retrieval")]

from ggml_writer import write_tiny_gpt2  # noqa: E402

from appliance.llm_config import CTransformerConfig  # noqa: E402
from quart_app.runtimes.llm_ctransformer import CTransformerBackend  # noqa: E402

SENTENCE = " hello the world, the answer is in the context."


def prompt_of(round_number: int, sentences: int) -> str:
    """Sentences of the writer's vocabulary, different from the first character on in each round."""
    return chr(ord("A") + round_number) + SENTENCE * sentences


async def measure(rounds: int, tokens: int, embd: int, layers: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = write_tiny_gpt2(Path(directory) / "gpt2.ggml.bin", n_ctx=2 * tokens, n_embd=embd, n_layer=layers)
        config = CTransformerConfig(
            model=str(path), model_type="gpt2", n_ctx=2 * tokens, max_tokens=1, threads=1, temperature=0
        )
        backend = CTransformerBackend(path, config)
        llm = backend._llm  # ctransformers' own call on the same model
        try:
            sentences = tokens // backend.count_tokens(SENTENCE)
            print(f"prompt of {backend.count_tokens(prompt_of(0, sentences))} tokens, n_embd {embd}, {layers} layers")
            batched, single = float("inf"), float("inf")
            for number in range(rounds):
                started = time.perf_counter()
                await backend.generate(prompt_of(2 * number, sentences), "bench")
                batched = min(batched, time.perf_counter() - started)
                started = time.perf_counter()
                llm(prompt_of(2 * number + 1, sentences), max_new_tokens=1, temperature=0, reset=True)
                single = min(single, time.perf_counter() - started)
        finally:
            await backend.aclose()
    print(f"ctransformers' single call: {single * 1000:.1f} ms per prompt")
    print(f"the backend's batches:      {batched * 1000:.1f} ms per prompt ({batched / single:.3f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=1500)
    parser.add_argument("--embd", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(measure(args.rounds, args.tokens, args.embd, args.layers))


if __name__ == "__main__":
    main()
