"""Isolation soak: >= 10,000 random index/share/unshare/delete/query operations for 10 users over 50 sources of
4 providers, several in flight at once and loads held mid-parse while changes arrive, checked against the model.

Skipped unless CCB_SOAK=1:

    CCB_SOAK=1 .venv/bin/pytest tests/soak/test_isolation_soak.py -s

CCB_ISOLATION_OPS sets the number of operations (default 10000); a failure prints its seed for
CCB_ISOLATION_SEED=<seed>. The fast subset in `make test` is tests/isolation/test_isolation.py.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "isolation"))

from isolation_app import serve_isolated
from isolation_run import IsolationRun

pytestmark = pytest.mark.skipif(
    os.environ.get("CCB_SOAK") != "1", reason="long run; CCB_SOAK=1 pytest tests/soak/test_isolation_soak.py -s"
)


async def test_no_user_ever_sees_what_they_may_not_read_over_ten_thousand_operations(
    tmp_path: Path, parser_gates: Path, fresh_dsn: str, embedder_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = int(os.environ.get("CCB_ISOLATION_OPS") or 10_000)
    seed = int(os.environ.get("CCB_ISOLATION_SEED") or random.SystemRandom().randrange(1, 2**31))
    async with serve_isolated(tmp_path / "storage", fresh_dsn, embedder_url, monkeypatch) as (client, engine):
        figures = await IsolationRun(client, engine.db, seed, parser_gates, users=10).run(ops)
    print(figures.summary())
    problems = figures.leaks[:20] + figures.lost[:20]
    assert problems == [], f"{figures.summary()}\nreplay: CCB_ISOLATION_SEED={seed}\n" + "\n".join(problems)
    assert figures.ops >= ops and figures.held_loads > 0, figures.summary()
