"""A llama section without a template (or with `auto`) speaks the GGUF's own chat template: the real SmolLM2 file
carries ChatML; an explicit template wins; a file without one, or with one that refuses a system turn or that would
double the BOS, still gets a working prompt."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from corpus_writer import Corpus
from gguf_copy import with_chat_template, without_chat_template
from llm_fixtures import CHATML, smollm2_path
from retrieval_corpus import BACKUPS, TRUSTED_DOMAINS
from retrieval_embedder import MiniLmEmbedder

from appliance.config import parse_config
from appliance.errors import ConfigError
from appliance.llm_config import (
    DEFAULT_NO_CTX_TEMPLATE,
    DEFAULT_TEMPLATE,
    ExtractiveConfig,
    LlamaConfig,
    NcTextToTextConfig,
)
from quart_app.runtimes.chat_template import ModelChatTemplate
from quart_app.runtimes.llm_extractive import ExtractiveBackend
from quart_app.runtimes.llm_llama import LlamaBackend
from quart_app.services.answer import build_answer_service, prompt_templates
from quart_app.store.database import Database

pytestmark = pytest.mark.slow

SMALL = {"n_ctx": 1024, "max_tokens": 64, "n_threads": 1, "temperature": 0.0}
# SmolLM2's chat format with upstream's instruction as the system turn (the shipped llama template until now)
CHATML_ANSWER = (
    "<|im_start|>system\nAnswer based only on this context and do not add any imaginative details. Make sure to use"
    " the same language as the question in your answer.\n{context}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>"
    "\n<|im_start|>assistant\n"
)
# a Gemma-like format: a system turn is refused with raise_exception
NO_SYSTEM_TURN = (
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def load(config: LlamaConfig, model: Path | None = None) -> LlamaBackend:
    return LlamaBackend(model or smollm2_path(), config)


async def test_a_llama_section_without_a_template_answers_in_the_models_chat_format_and_ends(
    db: Database, corpus: Corpus, embedder: MiniLmEmbedder
) -> None:
    """The plain-text template a llama section without `template` had made SmolLM2 run on to max_tokens; the GGUF's
    own ChatML ends the answer at the model's end of turn."""
    for source_id, (title, text) in {"nc: trusted": TRUSTED_DOMAINS, "ops: backups": BACKUPS}.items():
        await corpus.add(source_id, [text], ["alice"], title=title)
    config = parse_config({"llm": {"llama": SMALL}})
    assert isinstance(config.llm, LlamaConfig)
    llama = load(config.llm)
    try:
        result = await build_answer_service(config, db, embedder, llama).query(
            "alice", "Which file lists the trusted domains?"
        )
        assert "config.php" in result["output"]
        assert llama.count_tokens(result["output"]) - 1 < 64, result["output"]
    finally:
        await llama.aclose()


async def test_the_smollm2_file_gives_the_chatml_prompt_and_its_end_of_turn(caplog: pytest.LogCaptureFixture) -> None:
    llama = load(LlamaConfig(**SMALL, template="auto"))
    try:
        with caplog.at_level(logging.INFO, "quart_app.services.answer"):
            templates = prompt_templates(LlamaConfig(**SMALL), llama)
        assert templates.template == CHATML_ANSWER
        assert templates.no_ctx_template.endswith("<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")
        assert templates.end_separator == "<|im_end|>"
        assert caplog.messages == [
            "llm llama: prompt templates from the model's own chat template, SmolLM2-135M-Instruct.Q4_1.gguf"
            " (tokenizer.chat_template), stop string '<|im_end|>'"
        ]
        # written out in config.yaml, it wins over the file's
        explicit = prompt_templates(LlamaConfig(**SMALL, template=CHATML, no_ctx_template="{question}"), llama)
        assert (explicit.template, explicit.no_ctx_template, explicit.end_separator) == (CHATML, "{question}", "")
    finally:
        await llama.aclose()


def test_the_log_names_the_config_section_the_templates_came_from(caplog: pytest.LogCaptureFixture) -> None:
    """Without NEXTCLOUD_URL the extractive backend stands in for nc_texttotext: the templates are still that
    section's."""
    with caplog.at_level(logging.INFO, "quart_app.services.answer"):
        prompt_templates(NcTextToTextConfig(), ExtractiveBackend(ExtractiveConfig()))
    assert caplog.messages == ["llm extractive: prompt templates from config.yaml (llm.nc_texttotext), stop string ''"]


def test_auto_is_refused_where_no_model_file_carries_a_template() -> None:
    for backend in ("nc_texttotext", "ctransformer"):
        with pytest.raises(ConfigError) as raised:
            parse_config({"llm": {backend: {"model": "m.bin", "template": "auto"}}})
        assert "auto (the model file's own chat template) works only with llm.llama" in str(raised.value)


async def test_a_gguf_without_a_chat_template_gets_upstreams_plain_text_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    llama = load(LlamaConfig(**SMALL), without_chat_template(smollm2_path(), tmp_path / "plain.gguf"))
    try:
        assert llama.chat_template() is None
        with caplog.at_level(logging.INFO, "quart_app.services.answer"):
            templates = prompt_templates(LlamaConfig(**SMALL), llama)
        assert (templates.template, templates.no_ctx_template) == (DEFAULT_TEMPLATE, DEFAULT_NO_CTX_TEMPLATE)
        assert caplog.records[0].levelname == "WARNING"
        assert caplog.messages[0] == (
            "llm llama: template auto, but the model file carries no chat template: answering with upstream's"
            " plain-text template; set llm.llama.template to the model's chat format"
        )
    finally:
        await llama.aclose()


def test_a_template_that_refuses_a_system_turn_gets_the_instruction_in_the_users() -> None:
    chat = ModelChatTemplate("gemma-like.gguf", NO_SYSTEM_TURN, "", "<|im_end|>")
    assert chat.prompt("Answer from:\n{context}", "{question}") == (
        "<|im_start|>user\nAnswer from:\n{context}\n\n{question}<|im_end|>\n<|im_start|>assistant\n"
    )


async def test_a_template_that_loses_a_placeholder_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lossy = with_chat_template(smollm2_path(), tmp_path / "lossy.gguf", "{{ messages[-1]['content'] | upper }}")
    llama = load(LlamaConfig(**SMALL), lossy)
    try:
        with caplog.at_level(logging.WARNING, "quart_app.services.answer"):
            templates = prompt_templates(LlamaConfig(**SMALL), llama)
        assert templates.template == DEFAULT_TEMPLATE
        assert "its chat template does not keep {question} and {context} once" in caplog.messages[0]
    finally:
        await llama.aclose()


@pytest.mark.parametrize("adds_bos", [False, True])
async def test_the_bos_is_the_tokenizers_or_the_templates_never_both(tmp_path: Path, adds_bos: bool) -> None:
    """A Llama-3-like template opens with {{ bos_token }}; a tokenizer that adds BOS to every prompt would get two."""
    template = "{{ bos_token }}" + NO_SYSTEM_TURN.split("{% endif %}", 1)[1]
    model = with_chat_template(smollm2_path(), tmp_path / "bos.gguf", template, add_bos=adds_bos)
    llama = load(LlamaConfig(**SMALL), model)
    try:
        prompt = prompt_templates(LlamaConfig(**SMALL), llama).template
        bos = llama._llm.token_bos()  # white box: the tokens as fed to the model
        assert llama._tokens(prompt)[:2] == [bos, bos]  # one BOS, then <|im_start|> (SmolLM2's BOS is that token)
        assert llama._tokens(prompt)[2] != bos
    finally:
        await llama.aclose()
