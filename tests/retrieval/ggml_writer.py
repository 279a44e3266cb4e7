"""Writes a tiny random-weight GPT-2 in the legacy GGML file format (the one ctransformers' gpt2 loader reads).

Layout: magic 'ggml' (0x67676d6c), int32 hparams (n_vocab, n_ctx, n_embd, n_head, n_layer, ftype=0 for f32), the
vocabulary (int32 count, then uint32 length + bytes per token), then per tensor: int32 n_dims, int32 name length,
int32 type (0 = f32), int32 ne[0..n_dims) (ne[0] the fastest-varying dimension), the name, the f32 data.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

GGML_MAGIC = 0x67676D6C


def gpt2_vocabulary() -> list[bytes]:
    """Printable ASCII characters, their space-prefixed forms and a few words: enough for gpt_tokenize."""
    chars = [chr(c) for c in range(32, 127)]
    words = [" the", " hello", " world", " answer", " context", "ing", "ed"]
    return [t.encode() for t in chars + [" " + c for c in chars if c != " "] + words]


def write_tiny_gpt2(
    path: Path,
    n_ctx: int = 128,
    n_embd: int = 32,
    n_head: int = 2,
    n_layer: int = 2,
    extra_tokens: tuple[bytes, ...] = (),
    last_token_only: bool = False,
) -> Path:
    """`last_token_only`: layers and positions weigh nothing, so the next token depends on the last one alone and
    greedy decoding falls into a cycle (a model whose answer repeats itself)."""
    vocab = gpt2_vocabulary() + list(extra_tokens)
    n_vocab = len(vocab)
    rng = np.random.default_rng(7)

    def weights(*ne: int, scale: float = 0.02) -> np.ndarray:
        # numpy shape is ne reversed: ne[0] is the contiguous dimension
        return (rng.standard_normal(tuple(reversed(ne))) * scale).astype(np.float32)

    def layer_weights(*ne: int, scale: float = 0.02) -> np.ndarray:
        return weights(*ne, scale=0.0 if last_token_only else scale)

    tensors: dict[str, np.ndarray] = {
        "model/ln_f/g": np.ones(n_embd, np.float32),
        "model/ln_f/b": np.zeros(n_embd, np.float32),
        "model/wte": weights(n_embd, n_vocab),
        "model/wpe": layer_weights(n_embd, n_ctx, scale=0.01),
        "model/lm_head": weights(n_embd, n_vocab),
    }
    for i in range(n_layer):
        prefix = f"model/h{i}"
        tensors.update(
            {
                f"{prefix}/ln_1/g": np.ones(n_embd, np.float32),
                f"{prefix}/ln_1/b": np.zeros(n_embd, np.float32),
                f"{prefix}/ln_2/g": np.ones(n_embd, np.float32),
                f"{prefix}/ln_2/b": np.zeros(n_embd, np.float32),
                f"{prefix}/attn/c_attn/w": layer_weights(n_embd, 3 * n_embd),
                f"{prefix}/attn/c_attn/b": np.zeros(3 * n_embd, np.float32),
                f"{prefix}/attn/c_proj/w": layer_weights(n_embd, n_embd),
                f"{prefix}/attn/c_proj/b": np.zeros(n_embd, np.float32),
                f"{prefix}/mlp/c_fc/w": layer_weights(n_embd, 4 * n_embd),
                f"{prefix}/mlp/c_fc/b": np.zeros(4 * n_embd, np.float32),
                f"{prefix}/mlp/c_proj/w": layer_weights(4 * n_embd, n_embd),
                f"{prefix}/mlp/c_proj/b": np.zeros(n_embd, np.float32),
            }
        )
    with path.open("wb") as out:
        out.write(struct.pack("<I", GGML_MAGIC))
        out.write(struct.pack("<6i", n_vocab, n_ctx, n_embd, n_head, n_layer, 0))
        out.write(struct.pack("<i", n_vocab))
        for token in vocab:
            out.write(struct.pack("<I", len(token)) + token)
        for name, data in tensors.items():
            ne = list(reversed(data.shape))
            encoded = name.encode()
            out.write(struct.pack("<3i", len(ne), len(encoded), 0))
            out.write(struct.pack(f"<{len(ne)}i", *ne))
            out.write(encoded)
            out.write(np.ascontiguousarray(data, dtype="<f4").tobytes())
    return path
