"""The fake Nextcloud's context_chat routes (PHP app 5.4): the documents and actions queues with their claim and 24 h
lock, the file endpoint (faults, gzip, slow, held downloads), resolve_scope_list and enrich_sources; and the
methods a test fills them with."""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from pull_fake_base import FakeNextcloudBase
from pull_fake_wire import (
    _FILE_ERRORS,
    _FILE_SOURCE,
    LOCK_TIMEOUT_S,
    RecordedRequest,
    _accepts_gzip,
    _File,
    _Reply,
    _Row,
)


class QueueRoutes(FakeNextcloudBase):
    """The documents and actions queues, files, and the util routes."""

    def add_file(
        self,
        user_ids: list[str],
        title: str,
        content: bytes,
        mimetype: str = "text/plain",
        modified: int | None = None,
        file_id: int | None = None,
    ) -> int:
        """Create or replace a file and enqueue it unless a row for it exists; returns the file id (from 5001)."""
        with self._lock:
            if file_id is None:
                self._ids["file"] += 1
                file_id = 5000 + self._ids["file"]
            mtime = int(self.now()) if modified is None else modified
            self.files[file_id] = _File(list(user_ids), title, content, mimetype, mtime)
            self.users.update(user_ids)
            if not any(r.file_id == file_id for r in self._rows["files"].values()):
                self._new_row("files", file_id=file_id)
            return file_id

    def hold_file(self, file_id: int) -> threading.Event:
        """Downloads of the file send their headers, then wait until the returned event is set."""
        with self._lock:
            return self.held_files.setdefault(file_id, threading.Event())

    def set_file_users(self, file_id: int, user_ids: list[str]) -> None:
        """Who may read the file now (what the next claim of its row lists)."""
        with self._lock:
            self.files[file_id].user_ids = list(user_ids)

    def file_row_id(self, file_id: int) -> int | None:
        """The documents-queue row of a file, if one exists."""
        with self._lock:
            return next((r.id for r in self._rows["files"].values() if r.file_id == file_id), None)

    def remove_file(self, file_id: int) -> None:
        """Delete a file: fetches answer 404; a queued row for it is dropped silently when claimed (as PHP does)."""
        with self._lock:
            self.files.pop(file_id, None)

    def add_raw_file_item(self, item: dict[str, Any]) -> int:
        """A documents-queue file row served exactly as given (for validation tests); returns the row id."""
        with self._lock:
            return self._new_row("files", item=item)

    def add_raw_content_item(self, item: dict[str, Any]) -> int:
        """A content-provider row served exactly as given (for validation tests); returns the row id."""
        with self._lock:
            return self._new_row("content_providers", item=item)

    def add_content_item(
        self,
        user_ids: list[str],
        provider: str = "mail__mail",
        item_id: str = "42",
        title: str = "Re: budget",
        content: str = "full text of the item",
        mimetype: str = "text/plain",
        modified: int | None = None,
    ) -> int:
        """Enqueue a content-provider item; returns its content-queue row id (own id space)."""
        with self._lock:
            self.users.update(user_ids)
            item = {"userIds": list(user_ids), "reference": f"{provider}: {item_id}", "title": title,
                    "content": content, "modified": int(self.now()) if modified is None else modified,
                    "type": mimetype, "provider": provider, "size": len(content.encode())}  # fmt: skip
            return self._new_row("content_providers", item=item)

    def add_folder(self, folder_id: int, file_ids: list[int]) -> None:
        with self._lock:
            self.folders[folder_id] = list(file_ids)

    def add_action(self, type: str, payload: dict[str, Any]) -> int:
        return self.add_actions([(type, payload)])[0]

    def add_actions(self, actions: list[tuple[str, dict[str, Any]]]) -> list[int]:
        """Queue several actions at once (one poll serves all of them); returns their row ids."""
        with self._lock:
            return [
                self._new_row("actions", item={"id": self._ids["actions"] + 1, "type": type, "payload": payload})
                for type, payload in actions
            ]

    def restart_row_ids(self, kind: str) -> None:
        """The queue's table emptied and its ids restarted at 1, as after a restore from a backup or a TRUNCATE: the
        next rows reuse ids already served."""
        with self._lock:
            self._rows[kind].clear()
            self._ids[kind] = 0

    def acked_documents(self) -> dict[str, list[int]]:
        """Every id acknowledged so far per kind ("files", "content_providers", "actions"), in order."""
        with self._lock:
            return {kind: list(ids) for kind, ids in self._acked.items()}

    def queue_rows(self) -> dict[str, list[int]]:
        """Row ids still queued (locked or not) per kind."""
        with self._lock:
            return {kind: sorted(rows) for kind, rows in self._rows.items()}

    def locked_rows(self) -> dict[str, list[int]]:
        """Row ids claimed less than 24 h ago (per `now`) per kind."""
        with self._lock:
            cutoff = self.now() - LOCK_TIMEOUT_S
            return {
                kind: sorted(i for i, r in rows.items() if r.locked_at is not None and r.locked_at > cutoff)
                for kind, rows in self._rows.items()
            }

    def _claim(self, kind: str, n: int, build: Callable[[_Row], dict[str, Any] | None]) -> dict[str, Any]:
        """Claim up to n unlocked or expired rows in id order (caller holds the lock); build → None drops the row."""
        now, rows = self.now(), self._rows[kind]
        claimed: dict[str, Any] = {}
        for row_id in sorted(rows):
            row = rows[row_id]
            if len(claimed) >= n:
                break
            if row.locked_at is not None and row.locked_at > now - LOCK_TIMEOUT_S:
                continue
            item = build(row)
            if item is None:
                del rows[row_id]
                continue
            row.locked_at = now
            claimed[str(row_id)] = item
        return claimed

    def _file_item(self, row: _Row) -> dict[str, Any] | None:
        f = self.files.get(row.file_id) if row.item is None and row.file_id is not None else None
        if f is None:
            return row.item
        return {"userIds": list(f.user_ids), "reference": f"files__default: {row.file_id}", "title": f.title,
                "content": None, "modified": f.modified, "type": f.mimetype, "provider": "files__default",
                "size": len(f.content)}  # fmt: skip

    def _documents(self, req: RecordedRequest) -> _Reply:
        n_text = req.query.get("n", "64")
        n = int(n_text) if re.fullmatch(r"-?\d+", n_text) else 0
        if n <= 0:
            return self._bad(req, "Parameter n must be a positive integer")
        with self._lock:
            files = self._claim("files", min(n, 1024), self._file_item)
            content = self._claim("content_providers", min(n, 1024), lambda row: row.item)
        return self._ocs(req, {"files": files, "content_providers": content})

    def _ack(self, req: RecordedRequest, kinds: tuple[str, ...]) -> _Reply:
        if error := self._missing(req, kinds):
            return error
        body = req.json
        try:
            ids = {kind: [int(i) for i in body[kind]] for kind in kinds}
        except (TypeError, ValueError):
            return self._bad(req, "ids must be integers")
        with self._lock:
            for kind, values in ids.items():
                self._acked[kind].extend(values)
                for i in values:
                    self._rows[kind].pop(i, None)
        return self._ocs(req, [])

    def _actions(self, req: RecordedRequest) -> _Reply:
        if not re.fullmatch(r"-?\d+", n_text := req.query.get("n", "512")):
            return self._bad(req, "Parameter n must be an integer")
        with self._lock:
            actions = self._claim("actions", int(n_text), lambda row: row.item) if int(n_text) > 0 else {}
        return self._ocs(req, {"actions": actions})

    def _file(self, req: RecordedRequest, file_id: str) -> _Reply:
        fid = int(file_id)
        with self._lock:
            self.file_fetches[fid] += 1
            faults = self.file_faults.get(fid)
            fault = faults.popleft() if faults else None
            f = self.files.get(fid)
        if "userId" not in req.query:
            return self._bad(req, "missing parameter: userId")
        if fault is None and (f is None or req.query["userId"] not in f.user_ids):
            fault = 404
        if isinstance(fault, int):
            message = _FILE_ERRORS.get(fault, "Unknown error occurred.")
            reply = self._ocs(req, {"error": message}, fault, message)
            reply.headers.update(self._retry_after(fault))
            return reply
        assert f is not None
        data, headers = f.content, {"Content-Type": "application/octet-stream"}
        if self.gzip_responses and _accepts_gzip(req.headers.get("accept-encoding", "")):
            data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
        size = max(1, self.chunk_size)
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        if fault == "drop" and not data:
            return _Reply(0, drop=True)
        if fault == "drop":
            return _Reply(200, headers=headers, chunks=[data[: max(1, len(data) // 2)]], drop_after=1)
        return _Reply(
            200,
            headers=headers,
            chunks=chunks,
            chunk_delay=self.slow_files.get(fid, 0.0),
            hold=self.held_files.get(fid),
        )

    def _resolve(self, req: RecordedRequest) -> _Reply:
        if error := self._missing(req, ("source_ids",), ("userId",)):
            return error
        body = req.json
        out: list[str] = []
        with self._lock:
            if body["userId"] not in self.users:
                return self._ocs(req, [], 404)
            for sid in (s for s in body["source_ids"] if isinstance(s, str)):
                if not sid.startswith("files__default"):
                    out.append(sid)
                elif match := _FILE_SOURCE.match(sid):
                    folder = self.folders.get(int(match.group(1)))
                    out.extend([sid] if folder is None else [f"files__default: {i}" for i in folder])
        return self._ocs(req, {"source_ids": out})

    def _enrich(self, req: RecordedRequest) -> _Reply:
        if error := self._missing(req, ("sources",), ("userId",)):
            return error
        body = req.json
        providers: list[dict[str, str]] = []
        files: list[dict[str, str]] = []
        with self._lock:
            for source in (s for s in body["sources"] if isinstance(s, dict) and isinstance(s.get("source_id"), str)):
                sid, title = source["source_id"], str(source.get("title") or "")
                if match := _FILE_SOURCE.match(sid):
                    fid = int(match.group(1))
                    f = self.files.get(fid)
                    label = PurePosixPath(f.title).name if f and body["userId"] in f.user_ids else "Deleted file"
                    icon = f"{self.url}/core/img/filetypes/file.svg"
                    files.append({"id": sid, "label": label, "icon": icon, "url": f"{self.url}/index.php/f/{fid}"})
                    continue
                key, _, item_id = sid.partition(": ")
                app_id, sep, provider_id = key.partition("__")
                if sid.startswith("files__default") or not sep or not item_id:
                    continue  # unparsable or unknown provider: dropped silently
                label = f"{app_id[:1].upper()}{app_id[1:]} - {provider_id[:1].upper()}{provider_id[1:]}"
                url = f"{self.url}/apps/{app_id}/{item_id}"
                # MetadataService::getEnrichedSources: a provider item's entry carries its provider key as id
                providers.append(
                    {"id": key, "label": label + (title or f" #{item_id}"), "icon": f"/apps/{app_id}/img/app-dark.svg",
                     "url": url}
                )  # fmt: skip
        return self._ocs(req, {"sources": providers + files})
