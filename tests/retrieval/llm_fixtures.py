"""The real SmolLM2 GGUF behind the llama backend, loaded once per test session."""

from __future__ import annotations

from pathlib import Path

from appliance.llm_config import LlamaConfig
from appliance.model_catalogue import load_catalogue, resolve_model_files
from quart_app.runtimes.llm_llama import LlamaBackend
from quart_app.services.context_assembly import ContextPiece

SMOLLM2 = "smollm2-135m-instruct-q4_1"
CHATML = (
    "<|im_start|>system\\nAnswer only from the context.<|im_end|>\\n<|im_start|>user\\n{context}\\n\\n"
    "Question: {question}<|im_end|>\\n<|im_start|>assistant\\n"
).replace("\\n", "\n")

# four short documents the LLM tests and benches answer from (a fact, a schedule, flags to loop on, a table to copy)
ANSWER_DOCUMENTS = [
    ContextPiece(
        "nc: trusted",
        "Nextcloud: trusted domains",
        "The trusted_domains array in config/config.php lists every hostname under which the server may be reached."
        " Requests whose Host header is not in this list are refused with the page 'Access through untrusted domain'.",
    ),
    ContextPiece(
        "ops: backups",
        "Operations: nightly backups",
        "Every night at two o'clock the database is dumped with pg_dump and the archive is copied to the off-site"
        " storage box; dumps are kept for thirty days before they are pruned.",
    ),
    ContextPiece(
        "cli: verbose",
        "Click: counting options",
        "An option declared with @click.option('-v', '--verbose', count=True) counts how often it is given: -vvv"
        " sets verbose to 3. Combine short flags as -r -o or -ro; both set the same two options.",
    ),
    ContextPiece(
        "ops: ports",
        "Operations: firewall ports",
        "| port | service | open to |\n|---|---|---|\n| 443 | web | everyone |\n| 5432 | PostgreSQL | app servers |\n"
        "| 22 | SSH | admin VPN |",
    ),
]


def smollm2_path() -> Path:
    return resolve_model_files(load_catalogue()[SMOLLM2], Path("/nonexistent")).model


def load_smollm2(n_ctx: int = 2048, max_tokens: int = 24) -> LlamaBackend:
    config = LlamaConfig(
        n_ctx=n_ctx, max_tokens=max_tokens, n_threads=1, temperature=0.0, template=CHATML, end_separator="<|im_end|>"
    )
    return LlamaBackend(smollm2_path(), config)
