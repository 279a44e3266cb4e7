"""Copies of a GGUF file with its chat-template metadata changed in place, at the same byte length: no offset after
it moves, so llama.cpp loads the copy as it loads the original (GGUF key: u64 length + name, u32 type, value)."""

from __future__ import annotations

import struct
from pathlib import Path

GGUF_BOOL, GGUF_STRING = 7, 8
# the metadata (vocabulary included) lies well within the first bytes of a small model
HEADER_BYTES = 8 << 20


def _value_at(data: bytearray, key: str, kind: int) -> int:
    """The offset of `key`'s value (after its type), checking the key is there once and of that type."""
    name = struct.pack("<Q", len(key)) + key.encode()
    at = data.find(name, 0, HEADER_BYTES)
    assert at != -1 and data.find(name, at + 1, HEADER_BYTES) == -1, f"{key} is not in the header once"
    start = at + len(name)
    assert struct.unpack_from("<I", data, start)[0] == kind, f"{key} is not of GGUF type {kind}"
    return start + 4


def without_chat_template(source: Path, target: Path) -> Path:
    """`source` whose tokenizer.chat_template key is renamed: a model file that carries no chat template."""
    data = bytearray(source.read_bytes())
    start = _value_at(data, "tokenizer.chat_template", GGUF_STRING) - 4 - len("tokenizer.chat_template")
    data[start : start + 1] = b"x"
    target.write_bytes(data)
    return target


def with_chat_template(source: Path, target: Path, template: str, add_bos: bool = False) -> Path:
    """`source` carrying `template` as its chat template (padded with a Jinja comment to the original's length) and
    tokenizer.ggml.add_bos_token set to `add_bos`."""
    data = bytearray(source.read_bytes())
    value = _value_at(data, "tokenizer.chat_template", GGUF_STRING)
    length = struct.unpack_from("<Q", data, value)[0]
    padding = length - len(template.encode()) - len("{##}")
    assert padding >= 0, f"the template is longer than the original's {length} bytes"
    data[value + 8 : value + 8 + length] = (template + "{#" + " " * padding + "#}").encode()
    data[_value_at(data, "tokenizer.ggml.add_bos_token", GGUF_BOOL)] = int(add_bos)
    target.write_bytes(data)
    return target
