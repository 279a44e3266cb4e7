"""Move an upstream Context Chat config.yaml aside, so the config for this appliance is copied in its place.

Upstream's config (uvicorn keys, `embedding.protocol/host/port`, a llama.cpp e5-large GGUF that is never downloaded
here) would load but start an embedder for a model this appliance does not have. The file is renamed, not deleted.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import yaml

from appliance.repairs import RepairContext

log = logging.getLogger(__name__)

UPSTREAM_ONLY_KEYS = ("uvicorn_log_level", "use_colors", "uvicorn_workers", "embedding_chunk_size")
UPSTREAM_EMBEDDING_KEYS = ("protocol", "offload_after_mins")


def looks_upstream(raw: Any) -> bool:
    if not isinstance(raw, dict):
        return False
    embedding = raw.get("embedding")
    nested = isinstance(embedding, dict) and any(key in embedding for key in UPSTREAM_EMBEDDING_KEYS)
    return nested or any(key in raw for key in UPSTREAM_ONLY_KEYS)


def run(context: RepairContext) -> None:
    config = context.config_file
    if not config.is_file():
        return
    try:
        raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return  # not ours to judge: config validation names the YAML error right after the repairs
    if not looks_upstream(raw):
        return
    target = config.with_name(config.name + ".upstream")
    os.replace(config, target)
    log.warning("moved the upstream config %s to %s; the appliance's own config is copied next", config, target)
