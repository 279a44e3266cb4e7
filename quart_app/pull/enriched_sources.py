"""enrich_sources (PHP app 5.4+): a task's sources as the Assistant shows them, and the files Nextcloud reports
missing for the asking user.

Nextcloud 34 changes the mount cache on an unshare without the event the PHP app listens to, so the backend is never
told that a former recipient lost a file. enrich_sources asks Nextcloud itself: a file that is no longer in the user's
folder comes back labelled "Deleted file" (MetadataService::getMetadataObjectForId), in the user's language.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Sequence
from pathlib import PurePosixPath
from typing import Any

from quart_app.nextcloud import NextcloudClient, NextcloudError, NextcloudTimeoutError
from quart_app.nextcloud.readable_check_wait import ReadableCheckWait
from quart_app.nextcloud.readable_files import FILE_SOURCE_PREFIX
from quart_app.pull.pull_gate import ENRICH_SOURCES_PATH
from quart_app.services.answer import DocSearchResult, log_left_out
from quart_app.services.errors import ReadabilityUnknownError, ReadableCheckSpentError

log = logging.getLogger(__name__)

# the PHP app's "Deleted file" in each of its translations (l10n/*.json of context_chat v5.4.0 and of main as of
# 2026-07-21); a language without a translation shows the English one
DELETED_FILE_LABELS = frozenset(
    {
        "Arquivo excluído",
        "Borttagen fil",
        "Comhad scriosta",
        "Datei löschen",
        "Deleted file",
        "Faili iliyofutwa",
        "Ficheiro eliminado",
        "Fichier supprimé",
        "File eliminato",
        "File yang dihapus",
        "Izbrisana datoteka",
        "Ištrintas failas",
        "Kustutatud fail",
        "O'chirilgan fayl",
        "Silinmiş dosya",
        "Smazaný soubor",
        "Vymazaný súbor",
        "Διαγραμμένο αρχείο",
        "Устгагдсан файл",
        "ئۆچۈرۈلگەن ھۆججەت",
        "فایل حذف\u200cشده",  # noqa: RUF001 - Persian, in its own script
        "ファイルを削除",
        "已删除文件",
        "已刪除的檔案",
        "삭제된 파일",
    }
)

Entry = dict[str, Any]


async def enriched_entries(
    nc: NextcloudClient, user_id: str, sources: Sequence[DocSearchResult], timeout_s: float | None = None
) -> list[Entry]:
    """enrich_sources' entries {id, label, icon, url} (providers first, then files, as the PHP app orders them);
    NextcloudError when Nextcloud fails or answers without a list of them. `timeout_s`: None = the client's own."""
    if not sources:
        return []
    body = {"sources": list(sources), "userId": user_id}
    data = await nc.ocs("POST", ENRICH_SOURCES_PATH, json=body, timeout_s=timeout_s)
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise NextcloudError(f"POST {ENRICH_SOURCES_PATH}: the answer has no list of sources")
    return [entry for entry in entries if isinstance(entry, dict)]


def reported_missing(entries: Sequence[Entry], sources: Sequence[DocSearchResult]) -> set[str]:
    """The files among `sources` whose entry is labelled "Deleted file" (a file that is really named so is not);
    logged, as they are left out of the task's answer."""
    titles = {source["source_id"]: source["title"] for source in sources}
    missing = set()
    for entry in entries:
        source_id, label = str(entry.get("id")), entry.get("label")
        is_file = source_id.startswith(FILE_SOURCE_PREFIX) and source_id in titles
        if is_file and label in DELETED_FILE_LABELS and PurePosixPath(titles[source_id]).name != label:
            missing.add(source_id)
    log_left_out(log, missing)
    return missing


def as_task_output(entries: Sequence[Entry]) -> list[str]:
    """Unique JSON texts {id, label, icon, url} for the task output."""
    # unique as a whole: a provider item's entry has its provider key as id, so two mails share one id
    shown = ({key: entry.get(key) for key in ("id", "label", "icon", "url")} for entry in entries)
    return list(dict.fromkeys(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) for entry in shown))


class EnrichedCandidates:
    """AnswerService's `unreadable` check for pull-mode tasks: the documents a chat's context or a search round
    brings go to enrich_sources, and their entries are kept, so the task output names its sources without a call
    for labels. A round whose call fails, and fails again when asked once more (not after a timeout), leaves all its
    candidates out (Nextcloud never confirmed the user still reads them; the next round fills their places); the
    other rounds' candidates keep their entries. One per task, its rounds' calls sharing the wait `timeout_s`
    (ReadableCheckWait): once it is spent, the failed round ends the fill (ReadableCheckSpentError), and a call it
    cannot give any more (another answer attempt) fails unsent and unlogged."""

    def __init__(self, nc: NextcloudClient, timeout_s: float) -> None:
        self._nc = nc
        self._wait = ReadableCheckWait(timeout_s)
        self._entries: dict[str, Entry] = {}
        # the candidates of failed rounds, and why the last call failed
        self._unconfirmed: set[str] = set()
        self._failure = ""

    async def __call__(self, user_id: str, sources: list[DocSearchResult]) -> set[str]:
        # a call the spent wait does not send is no failure of Nextcloud's to tell the admin about
        sent = not self._wait.spent
        try:
            entries = await self._entries_asked_again_once(user_id, sources)
        except NextcloudError as exc:
            left_out = {source["source_id"] for source in sources}
            self._unconfirmed |= left_out
            self._failure = str(exc)
            spent = self._wait.spent
            if sent:
                log.warning(
                    "enrich_sources failed (%s): its %d candidate(s) are left out%s",
                    exc, len(left_out), "; the wait is spent, no further candidates are asked about" if spent else "",
                )  # fmt: skip
            if spent:
                raise ReadableCheckSpentError from exc
            return left_out
        self._entries.update(_entries_by_source(entries, sources))
        return reported_missing(entries, sources)

    async def _entries_asked_again_once(self, user_id: str, sources: list[DocSearchResult]) -> list[Entry]:
        """The round's entries; a call that failed without spending the wait (a 5xx, a dropped connection) is sent
        once more, within what the wait has left: left out, the round's readable files would be lost to the task."""
        what = f"POST {ENRICH_SOURCES_PATH}"

        def call(left_s: float) -> Awaitable[list[Entry]]:
            return enriched_entries(self._nc, user_id, sources, left_s)

        try:
            return await self._wait.call(what, call)
        except NextcloudError as exc:
            # a timeout spent the wait; Retry-After asks for more than one round can give
            if not exc.transient or isinstance(exc, NextcloudTimeoutError) or exc.retry_after_s is not None:
                raise
            log.info("enrich_sources failed (%s): asking once more about its %d candidate(s)", exc, len(sources))
        return await self._wait.call(what, call)

    def entries_of(self, found: Sequence[DocSearchResult]) -> list[Entry]:
        """The entries of `found` as one enrich_sources call on them orders them (providers, then files, each in
        the order of `found`)."""
        ordered = [s for s in found if not _is_file(s)] + [s for s in found if _is_file(s)]
        return [self._entries[s["source_id"]] for s in ordered if s["source_id"] in self._entries]

    def raise_if_left_out(self) -> None:
        """ReadabilityUnknownError when failed calls left candidates out: for a task left with nothing to answer
        from, which would otherwise tell a user who has documents that there are none."""
        if self._unconfirmed:
            raise ReadabilityUnknownError(len(self._unconfirmed), self._failure, "enrich_sources requests")


def _is_file(source: DocSearchResult) -> bool:
    return source["source_id"].startswith(FILE_SOURCE_PREFIX)


def _entries_by_source(entries: Sequence[Entry], sources: Sequence[DocSearchResult]) -> dict[str, Entry]:
    """Each entry under its source's id: a file's entry has the file's id; a provider item's has its provider key,
    and the PHP app answers a key's items in the order asked (all of them, or none when the provider is gone)."""
    by_source: dict[str, Entry] = {}
    items: defaultdict[str, deque[str]] = defaultdict(deque)
    for source in sources:
        if not _is_file(source):
            items[source["source_id"].partition(": ")[0]].append(source["source_id"])
    for entry in entries:
        entry_id = str(entry.get("id"))
        if entry_id.startswith(FILE_SOURCE_PREFIX):
            by_source[entry_id] = entry
        elif items[entry_id]:
            by_source[items[entry_id].popleft()] = entry
    return by_source
