"""Fetch the catalogue models a config needs: resumable (HTTP Range), .part file + atomic rename, sha256-verified."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from appliance.config import AppConfig
from appliance.errors import ApplianceError
from appliance.llm_config import LlamaConfig
from appliance.model_catalogue import FileSource, ModelEntry, UrlOrigin, download_path, load_catalogue

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
ProgressCallback = Callable[[int], None]


class ModelFetchError(ApplianceError):
    """A model file could not be downloaded or does not match the catalogue's size/sha256."""

    def __init__(self, model_id: str, message: str) -> None:
        super().__init__(message)
        self.model_id = model_id


class FetchCancelledError(ModelFetchError):
    """The fetch was stopped (app shutdown) before it finished; the .part file is kept for resuming."""


@dataclass(frozen=True)
class Download:
    """One file to fetch: the catalogue entry, its source and where it goes."""

    entry: ModelEntry
    source: FileSource
    origin: UrlOrigin
    dest: Path

    @property
    def part(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part")


def required_model_ids(config: AppConfig) -> list[str]:
    """Catalogue ids the config uses: the local embedder's model (with an external service instead, the ONNX model
    whose tokenizer sizes the chunks), the llama LLM's (paths are not ids) and the reranker's."""
    ids: list[str] = []
    embedding = config.embedding
    ids.append(embedding.local_model if embedding.workers > 0 else embedding.onnx.model)
    if config.llm_backend == "llama" and isinstance(config.llm, LlamaConfig):
        ids.append(config.llm.model)
    if config.retrieval.reranker is not None:
        ids.append(config.retrieval.reranker.model)
    return list(dict.fromkeys(ids))


def plan_downloads(model_ids: Iterable[str], catalogue: Mapping[str, ModelEntry], model_dir: Path) -> list[Download]:
    """URL-origin files of the catalogued ids (PyPI models and non-catalogue paths need nothing)."""
    plan: list[Download] = []
    for model_id in model_ids:
        entry = catalogue.get(model_id)
        if entry is None:
            log.info("model %r is not in the catalogue (a file path?); nothing to fetch for it", model_id)
            continue
        for source in entry.file_sources():
            if isinstance(source.origin, UrlOrigin):
                plan.append(Download(entry, source, source.origin, download_path(entry, source.origin, model_dir)))
    return plan


def sha256_of(item: Download, path: Path, stop: threading.Event | None = None) -> str:
    """The sha256 of one of `item`'s files; a set `stop` ends it (FetchCancelledError): a GGUF of gigabytes takes
    seconds."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            if stop is not None and stop.is_set():
                raise FetchCancelledError(item.entry.id, f"checking {path} was stopped")
            digest.update(block)
    return digest.hexdigest()


def _verify(item: Download, path: Path, stop: threading.Event | None = None) -> str | None:
    """None when `path` matches the catalogue's size and sha256 (unknown values are not checked), else why not."""
    size = path.stat().st_size
    if item.source.size is not None and size != item.source.size:
        return f"{size} bytes instead of {item.source.size}"
    if item.source.sha256 is not None:
        actual = sha256_of(item, path, stop)
        if actual != item.source.sha256:
            return f"sha256 {actual} instead of {item.source.sha256}"
    return None


def is_present(item: Download, stop: threading.Event | None = None) -> bool:
    """The final file exists and verifies; a file that does not verify is removed so it is fetched again."""
    if not item.dest.is_file():
        return False
    problem = _verify(item, item.dest, stop)
    if problem is None:
        return True
    log.warning("model file %s does not match the catalogue (%s); fetching it again", item.dest, problem)
    item.dest.unlink()
    return False


def fetch_file(
    client: httpx.Client,
    item: Download,
    on_fraction: Callable[[float], None],
    stop: threading.Event | None = None,
) -> Path:
    """Download `item` into its .part file (resuming from its size), verify it, rename it into place."""
    model_id = item.entry.id
    item.dest.parent.mkdir(parents=True, exist_ok=True)
    offset = item.part.stat().st_size if item.part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with client.stream("GET", item.origin.url, headers=headers) as response:
            if response.status_code == 416 and offset:
                log.info("server says %s is complete at %d bytes", item.part, offset)
            elif response.status_code in (200, 206):
                if response.status_code == 200 and offset:
                    log.info("server ignored the Range request for %s; downloading from the start", item.origin.url)
                    offset = 0
                mode = "ab" if offset else "wb"
                length = response.headers.get("content-length")
                total = offset + int(length) if length and length.isdigit() else item.source.size
                done = offset
                with item.part.open(mode) as handle:
                    for block in response.iter_bytes(CHUNK_BYTES):
                        if stop is not None and stop.is_set():
                            raise FetchCancelledError(model_id, f"fetching {item.origin.url} was stopped")
                        handle.write(block)
                        done += len(block)
                        if total:
                            on_fraction(min(done / total, 1.0))
            else:
                raise ModelFetchError(
                    model_id,
                    f"Downloading of '{model_id}' failed: {item.origin.url} answered HTTP {response.status_code}",
                )
    except httpx.HTTPError as exc:
        raise ModelFetchError(
            model_id, f"Downloading of '{model_id}' failed: {type(exc).__name__}: {exc}; /init resumes where it stopped"
        ) from exc
    problem = _verify(item, item.part, stop)
    if problem is not None:
        item.part.unlink()
        raise ModelFetchError(
            model_id, f"Downloading of '{model_id}' failed: {item.origin.url} gave {problem}; the download was removed"
        )
    if item.source.sha256 is None:
        actual = sha256_of(item, item.part, stop)
        log.info("fetched %s (sha256 %s; pin it in models/catalogue.yaml)", item.dest.name, actual)
    os.replace(item.part, item.dest)
    on_fraction(1.0)
    return item.dest


def fetch_models(
    config: AppConfig,
    model_dir: Path,
    progress: ProgressCallback,
    *,
    stop: threading.Event | None = None,
    catalogue: Mapping[str, ModelEntry] | None = None,
    client: httpx.Client | None = None,
    verify_ssl: bool = True,
    download: bool = True,
) -> list[Path]:
    """Fetch every missing file the config needs; progress(0..100) as it goes. Blocking: run it in a thread. With
    `download` False (CC_DOWNLOAD_MODELS_FROM_HF=false) a missing file is a ModelFetchError saying where it goes."""
    plan = plan_downloads(required_model_ids(config), catalogue or load_catalogue(), model_dir)
    pending = [item for item in plan if not is_present(item, stop)]
    log.info("models: %d file(s) needed, %d to fetch", len(plan), len(pending))
    if not pending:
        progress(100)
        return [item.dest for item in plan]
    if not download:
        wanted = "; ".join(f"{item.origin.url} as {item.dest}" for item in pending)
        raise ModelFetchError(
            pending[0].entry.id,
            f"CC_DOWNLOAD_MODELS_FROM_HF is off and {len(pending)} model file(s) are missing: place {wanted}; then"
            " redeploy the app (AppAPI sends POST /init again) or restart it",
        )
    own_client = client is None
    http = client or httpx.Client(follow_redirects=True, verify=verify_ssl, timeout=httpx.Timeout(60.0))
    last = -1

    def report(done_files: int, fraction: float) -> None:
        nonlocal last
        percent = int(100 * (done_files + fraction) / len(pending))
        if percent != last:
            last = percent
            progress(percent)

    try:
        report(0, 0.0)
        for index, item in enumerate(pending):
            log.info("fetching %s for model %s from %s", item.dest.name, item.entry.id, item.origin.url)
            fetch_file(http, item, functools.partial(report, index), stop)
    finally:
        if own_client:
            http.close()
    return [item.dest for item in plan]
