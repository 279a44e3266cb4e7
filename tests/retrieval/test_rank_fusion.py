"""Reciprocal-rank fusion: hits a leg ranks equal share their rank, so the other legs, not chunk ids (the order in
which documents happened to be ingested), decide between them."""

from __future__ import annotations

from quart_app.services.rank_fusion import fuse, tied_ranks
from quart_app.store.search_store import Hit, LexicalHit


def hits(*scored: tuple[int, float]) -> list[Hit]:
    return [Hit(chunk_id, f"doc {chunk_id}", score) for chunk_id, score in scored]


def test_hits_of_equal_score_share_the_mean_of_their_places() -> None:
    assert tied_ranks(hits((1, 5.0), (2, 3.0), (3, 3.0), (4, 3.0), (5, 1.0))) == [1, 3, 3, 3, 5]
    assert tied_ranks(hits((1, 0.2), (2, 0.3))) == [1, 2]
    assert tied_ranks([]) == []


def test_full_text_hits_tie_only_on_the_same_counts_and_text_rank() -> None:
    def lexical(chunk_id: int, identifiers: int, words: int, text_rank: float) -> LexicalHit:
        return LexicalHit(chunk_id, f"doc {chunk_id}", text_rank, identifiers, words, words)

    ranked = [lexical(1, 1, 0, 0.1), lexical(2, 0, 2, 0.1), lexical(3, 0, 1, 0.3), lexical(4, 0, 1, 0.3)]
    assert tied_ranks(ranked) == [1, 2, 3.5, 3.5]


def test_the_other_leg_decides_between_tied_hits_whichever_is_listed_first() -> None:
    # chunks 1 and 2 hold the identifier once each (equal full-text rank); the vector leg prefers 2
    vector = hits((2, 0.1), (9, 0.2), (1, 0.3))
    once = [LexicalHit(chunk_id, f"doc {chunk_id}", 0.1, 1, 0, 0) for chunk_id in (1, 2)]
    for lexical in (once, once[::-1]):
        fused = fuse({"vector": (1.0, vector), "lexical": (10.0, lexical)}, 60)
        assert [item[0] for item in fused] == [2, 1, 9]
        assert fused[0][2] == 1 / 61 + 10 / 61.5


def test_untied_hits_keep_their_places() -> None:
    fused = fuse({"lexical": (1.0, hits((1, 3.0), (2, 2.0), (3, 1.0)))}, 60)
    assert [(item[0], item[2]) for item in fused] == [(1, 1 / 61), (2, 1 / 62), (3, 1 / 63)]
