"""Which sources enrich_sources reports missing for the user: files labelled "Deleted file" in any of the PHP app's
languages, never a provider item and never a file that really has that name."""

from __future__ import annotations

from quart_app.pull.enriched_sources import reported_missing
from quart_app.services.answer import DocSearchResult

SOURCES: list[DocSearchResult] = [
    {"source_id": "files__default: 1", "title": "files/Documents/vault.txt"},
    {"source_id": "files__default: 2", "title": "files/plan.md"},
    {"source_id": "files__default: 3", "title": "files/Archiv/Datei löschen"},
    {"source_id": "mail__mail: 4", "title": "Deleted file"},
]


def _entry(source_id: str, label: str) -> dict[str, str]:
    return {"id": source_id, "label": label, "icon": "", "url": ""}


def test_files_labelled_deleted_in_the_users_language_are_missing() -> None:
    entries = [
        _entry("mail__mail: 4", "Mail - mailDeleted file"),
        _entry("files__default: 1", "Fichier supprimé"),
        _entry("files__default: 2", "plan.md"),
        # German's translation, and a file that really carries that name
        _entry("files__default: 3", "Datei löschen"),
    ]
    assert reported_missing(entries, SOURCES) == {"files__default: 1"}
    assert reported_missing([_entry("files__default: 2", "已删除文件")], SOURCES) == {"files__default: 2"}


def test_a_renamed_share_or_an_unknown_label_is_kept() -> None:
    assert reported_missing([_entry("files__default: 1", "my vault.txt")], SOURCES) == set()
    assert reported_missing([_entry("files__default: 9", "Deleted file")], SOURCES) == set()  # not asked about
