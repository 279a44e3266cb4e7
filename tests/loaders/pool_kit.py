"""Helpers for the parse-pool tests: the parser OS user and the text a document's chunks cover."""

import os
import pwd
import subprocess
from collections.abc import Sequence

from quart_app.loaders import DocumentChunk
from quart_app.loaders.worker_identity import PARSER_OS_USER


def ensure_parser_user() -> pwd.struct_passwd | None:
    """The parse workers' OS user, created (as the appliance image does) when missing; None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PARSER_OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PARSER_OS_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(PARSER_OS_USER)


def text_of(chunks: Sequence[DocumentChunk]) -> str:
    """The text the chunks cover, rebuilt from their offsets (whitespace trimmed between chunks becomes spaces)."""
    if not chunks:
        return ""
    covered = [" "] * max(chunk.start + len(chunk.text) for chunk in chunks)
    for chunk in chunks:
        covered[chunk.start : chunk.start + len(chunk.text)] = chunk.text
    return "".join(covered)
