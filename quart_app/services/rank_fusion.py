"""Weighted reciprocal-rank fusion of the retrieval legs' hits, hits a leg ranks equal sharing their rank."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from quart_app.store.search_store import Hit

Fused = tuple[int, str, float, tuple[str, ...]]  # chunk id, source id, fused score, legs that found it


def tied_ranks(hits: Sequence[Hit]) -> list[float]:
    """Each hit's rank from 1, hits of equal standing sharing the mean of their places: which of them a leg lists
    first follows chunk ids, the order in which documents happened to be ingested (many chunks hold `packageloader`
    once)."""
    places: dict[tuple[float, ...], list[int]] = {}
    for place, hit in enumerate(hits, start=1):
        places.setdefault(hit.standing(), []).append(place)
    mean_place = {standing: statistics.fmean(tied) for standing, tied in places.items()}
    return [mean_place[hit.standing()] for hit in hits]


def fuse(legs: Mapping[str, tuple[float, Sequence[Hit]]], rrf_k: int) -> list[Fused]:
    """Weighted reciprocal-rank fusion: score = sum over legs of weight / (rrf_k + rank), rank from 1 (tied_ranks)."""
    scores: dict[int, float] = {}
    sources: dict[int, str] = {}
    found_by: dict[int, list[str]] = {}
    for leg, (weight, hits) in legs.items():
        for rank, hit in zip(tied_ranks(hits), hits, strict=True):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + weight / (rrf_k + rank)
            sources[hit.chunk_id] = hit.source_id
            found_by.setdefault(hit.chunk_id, []).append(leg)
    ordered = sorted(scores, key=lambda cid: (-scores[cid], cid))
    return [(cid, sources[cid], scores[cid], tuple(found_by[cid])) for cid in ordered]
