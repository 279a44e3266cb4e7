"""What must hold in the database after any crash: read with plain SQL, each violation named with its source."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from php_indexer import Document

Query = Callable[..., list[tuple[Any, ...]]]


def queue_left(query: Query) -> int | None:
    """Chunks not embedded yet (queued, leased or failed); None while the database does not answer."""
    try:
        return int(query("SELECT count(*) FROM chunks WHERE embed_state <> 'embedded' OR embedding IS NULL")[0][0])
    except psycopg.OperationalError:
        return None


def documents_stored(query: Query) -> int | None:
    """Document rows committed so far; None while the database does not answer."""
    try:
        return int(query("SELECT count(*) FROM documents")[0][0])
    except psycopg.OperationalError:
        return None


def index_problems(query: Query, documents: Iterable[Document], acknowledged: set[str]) -> list[str]:
    """Every acknowledged document stored once, whole and embedded; no indexed document half-written anywhere."""
    sent = {document.source_id: document for document in documents}
    problems: list[str] = []
    stored = {
        row[0]: row[1:]
        for row in query("SELECT source_id, state, version, content_hash, error FROM documents ORDER BY source_id")
    }
    chunks: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in query(
        "SELECT source_id, version, ordinal, start_offset, text, embed_state, embedding IS NOT NULL, lease_token"
        " FROM chunks ORDER BY source_id, ordinal, id"
    ):
        chunks[row[0]].append(row[1:])
    readers: dict[str, set[str]] = defaultdict(set)
    for user_id, source_id in query("SELECT user_id, source_id FROM access"):
        readers[source_id].add(user_id)

    for source_id in sorted(acknowledged - stored.keys()):
        problems.append(f"{source_id}: acknowledged but has no document row")
    for source_id in sorted(stored.keys() - sent.keys()):
        problems.append(f"{source_id}: a document nobody sent")
    for source_id, (state, version, content_hash, error) in stored.items():
        document = sent.get(source_id)
        if document is None:
            continue
        if state != "indexed":
            if source_id in acknowledged:
                problems.append(f"{source_id}: acknowledged but {state} ({error})")
            if chunks.get(source_id):
                problems.append(f"{source_id}: {state} but has {len(chunks[source_id])} chunks")
            continue
        if bytes(content_hash) != hashlib.sha256(document.content).digest():
            problems.append(f"{source_id}: content hash is not the sent file's")
        if readers[source_id] != set(document.users):
            problems.append(f"{source_id}: readers {sorted(readers[source_id])}, sent {list(document.users)}")
        problems.extend(_chunk_problems(source_id, version, document.text, chunks.get(source_id, [])))
    for source_id in sorted(chunks.keys() - stored.keys()):
        problems.append(f"{source_id}: {len(chunks[source_id])} chunks without a document row")
    return problems


def _chunk_problems(source_id: str, version: int, text: str, rows: list[tuple[Any, ...]]) -> list[str]:
    """One version, ordinals 0..n-1 once each, each chunk a slice of the text, every word covered, all embedded."""
    if not rows:
        return [f"{source_id}: indexed (v{version}) without chunks (half-written)"]
    problems = []
    versions = sorted({row[0] for row in rows})
    if versions != [version]:
        problems.append(f"{source_id}: chunks of versions {versions}, document is v{version}")
    ordinals = [row[1] for row in rows]
    if ordinals != list(range(len(rows))):
        problems.append(f"{source_id}: chunk ordinals {ordinals} (duplicates or gaps)")
    covered = bytearray(len(text))
    for _version, ordinal, start, chunk_text, embed_state, has_vector, lease in rows:
        if text[start : start + len(chunk_text)] != chunk_text:
            problems.append(f"{source_id}: chunk {ordinal} is not the text at offset {start}")
        end = min(start + len(chunk_text), len(text))
        covered[start:end] = b"\x01" * max(0, end - start)
        if embed_state != "embedded" or not has_vector or lease is not None:
            problems.append(f"{source_id}: chunk {ordinal} is {embed_state}, vector {has_vector}, lease {lease}")
    missing = [i for i, char in enumerate(text) if not char.isspace() and not covered[i]]
    if missing:
        problems.append(f"{source_id}: {len(missing)} characters in no chunk, first at offset {missing[0]}")
    return problems
