"""The enabled flag shared through the database (services/shared_enabled.py): a PUT /enabled on a replica is never
undone by that replica's own sync loop, whether it ran between the PUT's state change and its publish or started only
after the PUT (its engine opened late)."""

from __future__ import annotations

from pathlib import Path

from quart_app.app_state import EnabledState
from quart_app.services.shared_enabled import SharedEnabled
from quart_app.store import Database
from quart_app.store.app_state_store import read_enabled, write_enabled


async def _stored(db: Database) -> bool | None:
    async with db.connection() as conn:
        return await read_enabled(conn)


async def test_a_put_enabled_met_by_the_first_sync_before_its_publish_is_shared_not_reverted(
    db: Database, tmp_path: Path
) -> None:
    async with db.connection() as conn:
        await write_enabled(conn, False)  # the other replicas, started earlier, shared 'disabled'
    state = EnabledState(tmp_path / "app_state.json")
    shared = SharedEnabled(db, state, [], started_with=state.enabled)  # just started: its loop has not synced yet
    # PUT /enabled?enabled=1 (lifecycle.set_enabled): the state is set, then the listeners run; the loop's first
    # sync comes in between (seen in the three-roles test: "another replica set enabled=False" right after the PUT)
    state.set(True)
    await shared.sync()
    await shared.publish(True)
    await shared.sync()  # the loop's next round
    assert (state.enabled, await _stored(db)) == (True, True)


async def test_a_value_another_replica_stored_is_still_followed(db: Database, tmp_path: Path) -> None:
    state = EnabledState(tmp_path / "app_state.json")
    shared = SharedEnabled(db, state, [], started_with=state.enabled)
    await shared.sync()  # nothing stored yet: ours (disabled) is written
    assert await _stored(db) is False
    async with db.connection() as conn:
        await write_enabled(conn, True)  # PUT /enabled on another replica
    await shared.sync()
    assert (state.enabled, await _stored(db)) == (True, True)


async def test_a_put_enabled_served_before_the_engine_opened_is_shared_not_reverted(
    db: Database, tmp_path: Path
) -> None:
    async with db.connection() as conn:
        await write_enabled(conn, False)  # the version before the update was disabled by AppAPI, as an update does
    state = EnabledState(tmp_path / "app_state.json")
    started_with = state.enabled
    # AppAPI's PUT /enabled?enabled=1 while the engine still opens (a long migration): no SharedEnabled exists yet
    state.set(True)
    shared = SharedEnabled(db, state, [], started_with=started_with)  # the engine has opened
    await shared.sync()
    # before: taken for another replica's choice, and the app disabled itself right after AppAPI enabled it
    assert (state.enabled, await _stored(db)) == (True, True)
