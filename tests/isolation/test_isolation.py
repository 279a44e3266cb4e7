"""Isolation (fast subset, in `make test`): ~1,000 random index/share/unshare/delete/query operations for 8 users
over 50 sources of 4 providers, several in flight at once, checked against the model: zero leaks.

The full run (>= 10,000 operations) is tests/soak/test_isolation_soak.py. Replay a failure with the seed it
prints: CCB_ISOLATION_SEED=<seed> pytest tests/isolation
"""

from __future__ import annotations

from pathlib import Path

from isolation_run import IsolationRun
from quart.typing import TestClientProtocol as Client

from quart_app.engine import Engine

OPS = 1_000


async def test_no_user_ever_sees_what_they_may_not_read(
    isolated_app: tuple[Client, Engine], isolation_seed: int, parser_gates: Path
) -> None:
    client, engine = isolated_app
    figures = await IsolationRun(client, engine.db, isolation_seed, parser_gates).run(OPS)
    print(figures.summary())
    problems = figures.leaks[:20] + figures.lost[:20]
    assert problems == [], f"{figures.summary()}\nreplay: CCB_ISOLATION_SEED={isolation_seed}\n" + "\n".join(problems)
    # not vacuous: most questions that could find something did, and loads were held while changes arrived
    assert figures.queries_with_hits >= figures.queries_answerable * 0.8 and figures.held_loads > 0, figures.summary()
