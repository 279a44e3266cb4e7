"""The real SmolLM2 GGUF behind the llama backend, loaded once per test session."""

from __future__ import annotations

from pathlib import Path

from appliance.llm_config import LlamaConfig
from appliance.model_catalogue import load_catalogue, resolve_model_files
from quart_app.runtimes.llm_llama import LlamaBackend

SMOLLM2 = "smollm2-135m-instruct-q4_1"
CHATML = (
    "<|im_start|>system\\nAnswer only from the context.<|im_end|>\\n<|im_start|>user\\n{context}\\n\\n"
    "Question: {question}<|im_end|>\\n<|im_start|>assistant\\n"
).replace("\\n", "\n")


def smollm2_path() -> Path:
    return resolve_model_files(load_catalogue()[SMOLLM2], Path("/nonexistent")).model


def load_smollm2(n_ctx: int = 2048, max_tokens: int = 24) -> LlamaBackend:
    config = LlamaConfig(
        n_ctx=n_ctx, max_tokens=max_tokens, n_threads=1, temperature=0.0, template=CHATML, end_separator="<|im_end|>"
    )
    return LlamaBackend(smollm2_path(), config)
