"""SourceOrder: access changes and deletes wait for ingests of what they touch; loads older than a change are stale.

Each test runs on the order alone (this process) and on the order with its claims in the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
from engine_kit import rows

from quart_app.services import deletion
from quart_app.services.errors import OrderWaitTimeoutError, SourceBusyError
from quart_app.services.source_order import OrderKey, SourceOrder, provider_key, source_key, user_key
from quart_app.store import Database
from quart_app.store.claim_store import ClaimStore
from quart_app.store.document_store import ChunkRecord, DocumentRecord, write_indexed

OrderFactory = Callable[[float], SourceOrder]


@dataclass(frozen=True)
class Load:
    source_id: str
    provider: str = "files__default"
    user_ids: Sequence[str] = ("alice", "bob")


DOC = Load("files__default: 1")
OTHER = Load("files__default: 2", user_ids=("alice",))


@pytest.fixture(params=["this process", "database"])
async def make_order(request: pytest.FixtureRequest, db: Database) -> AsyncIterator[OrderFactory]:
    """SourceOrder(wait_s), without or with a ClaimStore on the test database."""
    if request.param == "this process":
        yield SourceOrder
        return
    claims = ClaimStore(db)
    await claims.open(timeout_s=10)
    yield lambda wait_s: SourceOrder(wait_s, claims)
    await claims.close()


async def _change(order: SourceOrder, keys: list[OrderKey], done: list[str], name: str) -> None:
    async with order.change(keys):
        done.append(name)


async def _yield_until(condition: Callable[[], bool], what: str) -> None:
    """Let other tasks run until `condition()` holds (a bounded number of loop turns, no clock)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


async def test_a_change_waits_for_the_ingest_of_its_source_and_goes_before_newer_loads(
    make_order: OrderFactory,
) -> None:
    order = make_order(30)
    done: list[str] = []
    async with order.arrival() as arrival, order.claim([DOC], arrival) as claim:
        assert claim.held == {DOC.source_id} and claim.stale == ()
        deny = asyncio.create_task(_change(order, [source_key(DOC.source_id)], done, "deny"))
        await _yield_until(lambda: order.snapshot()["changes_waiting"] == 1, "the deny waiting")
        # a load arriving now must not slip in before the waiting deny
        async with order.arrival() as later:
            with pytest.raises(SourceBusyError, match="files__default: 1"):
                await order.claim([DOC], later).__aenter__()
        # other sources are not held up
        async with order.arrival() as later, order.claim([OTHER], later) as other:
            assert other.held == {OTHER.source_id}
        assert done == [] and not deny.done()
    await deny
    assert done == ["deny"] and order.snapshot()["changes_waiting"] == 0


async def test_a_load_that_arrived_before_a_change_of_its_source_provider_or_readers_is_stale(
    make_order: OrderFactory,
) -> None:
    order = make_order(30)
    done: list[str] = []
    for key in (source_key(DOC.source_id), provider_key("files__default"), user_key("bob")):
        async with order.arrival() as before:
            await _change(order, [key], done, key[0])
            async with order.arrival() as after:
                async with order.claim([DOC, Load("notes__x: 1", "notes__x", ("carol",))], before) as old:
                    assert old.stale == (DOC.source_id,) and old.held == {"notes__x: 1"}
                async with order.claim([DOC], after) as new:
                    assert new.stale == () and new.held == {DOC.source_id}
    assert done == ["source", "provider", "user"]


async def test_an_ingest_makes_an_older_waiting_load_of_the_same_source_stale(make_order: OrderFactory) -> None:
    order = make_order(30)
    async with order.arrival() as older:
        async with order.arrival() as newer, order.claim([DOC], newer):
            pass
        async with order.claim([DOC], older) as claim:
            assert claim.stale == (DOC.source_id,)


async def test_ingests_share_readers_and_providers_and_a_user_delete_waits_for_all_of_them(
    make_order: OrderFactory,
) -> None:
    order = make_order(30)
    done: list[str] = []
    async with order.arrival() as arrival, order.claim([DOC], arrival), order.claim([OTHER], arrival):
        delete_user = asyncio.create_task(_change(order, [user_key("alice")], done, "delete alice"))
        await _yield_until(lambda: order.snapshot()["changes_waiting"] == 1, "the user delete waiting")
        await _change(order, [provider_key("notes__x")], done, "delete notes")  # touches neither ingest
        assert not delete_user.done()
    await delete_user
    assert done == ["delete notes", "delete alice"]


async def test_a_bare_provider_delete_waits_for_and_outdates_loads_of_a_provider_with_nothing_stored_yet(
    make_order: OrderFactory, db: Database
) -> None:
    """A PHP app before 5.5 names a provider by its bare id when its app is disabled; the delete looked up the stored
    providers of that name without waiting, so the first document of one, being ingested, stayed searchable."""
    order = make_order(30)
    mail = Load("mail__mail: 1", provider="mail__mail")
    async with order.arrival() as arrival, order.claim([mail], arrival):
        delete = asyncio.create_task(deletion.delete_named_provider(db, order, "mail"))
        await _yield_until(lambda: order.snapshot()["changes_waiting"] == 1, "the delete waiting for the load")
        await _write(db, mail)
    assert await delete == 1
    async with order.arrival() as polled_before:
        assert await deletion.delete_named_provider(db, order, "mail") == 0
        async with order.claim([mail], polled_before) as claim:
            assert claim.stale == (mail.source_id,), "a load older than the delete would bring the document back"
    assert await rows(db, "SELECT source_id FROM documents") == []


async def _write(db: Database, load: Load) -> None:
    """Store the load's document as its ingest would."""
    record = DocumentRecord(load.source_id, load.provider, "t", "text/plain", 1, b"h", 1)
    async with db.connection() as conn:
        await write_indexed(conn, record, [ChunkRecord(0, "the text", 0, 2, b"h")], list(load.user_ids))


async def test_a_change_that_waits_too_long_says_what_holds_it_and_leaves_nothing_behind(
    make_order: OrderFactory,
) -> None:
    order = make_order(0.05)
    async with order.arrival() as arrival, order.claim([DOC], arrival):
        message = (
            r"source 'files__default: 1' still held by an ingest or an earlier change after waiting 0.05 s;"
            r" retry in some time \(or raise ingest.access_wait_s\)"
        )
        with pytest.raises(OrderWaitTimeoutError, match=message):
            async with order.change([source_key(DOC.source_id), source_key("files__default: 9")]):
                pass
        assert order.snapshot()["changes_waiting"] == 0
        # the timed-out change held nothing: the free source is free
        async with order.change([source_key("files__default: 9")]):
            pass


async def test_a_cancelled_waiting_change_does_not_block_the_ones_behind_it(make_order: OrderFactory) -> None:
    order = make_order(30)
    done: list[str] = []
    async with order.arrival() as arrival, order.claim([DOC], arrival):
        first = asyncio.create_task(_change(order, [source_key(DOC.source_id), user_key("zoe")], done, "first"))
        await _yield_until(lambda: order.snapshot()["changes_waiting"] == 1, "the first change waiting")
        second = asyncio.create_task(_change(order, [user_key("zoe")], done, "second"))
        await _yield_until(lambda: order.snapshot()["changes_waiting"] == 2, "the second change queued behind it")
        first.cancel()
        await second
        assert done == ["second"]
    with pytest.raises(asyncio.CancelledError):
        await first
    assert order.snapshot() == {"loads_open": 0, "sources_held": 0, "sources_held_sample": [], "changes_waiting": 0}


async def test_a_database_claim_is_let_go_when_its_block_ends(db: Database) -> None:
    """Two replicas' claim stores take one source in turn, with nothing in between: the second never finds it held."""
    async with AsyncExitStack() as stack:
        stores = []
        for _ in range(2):
            store = ClaimStore(db)
            await store.open(timeout_s=10)
            stack.push_async_callback(store.close)
            stores.append(store)
        for turn in range(40):
            async with stores[turn % 2].try_hold([source_key(DOC.source_id)], [user_key("alice")], wait_s=5):
                pass
