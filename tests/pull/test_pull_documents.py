"""The documents queue (PHP app 5.4+) against the fake Nextcloud: claim, fetch, ingest, acknowledge."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque

import psycopg
import pytest
from async_wait import until
from nextcloud_pull_fake import FakePullNextcloud, RecordedRequest
from pull_kit import BUDGET, HIKING, LABEL, PullApp, acked

from quart_app.store.claim_store import KIND_NUMBERS, LOCK_CLASS_BASE


async def test_files_and_provider_items_are_indexed_per_user_and_acknowledged(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    budget = nextcloud.add_file(["alice"], "files/Documents/budget.txt", BUDGET)
    hiking = nextcloud.add_file(["bob", "bob"], "files/holiday.md", HIKING, mimetype="text/markdown")
    shared = nextcloud.add_file(["alice", "bob"], "files/label.txt", LABEL)
    mail = nextcloud.add_content_item(["alice"], content="Re: budget. The Berlin budget review is on Friday.")
    await until(lambda: len(acked(nextcloud, "files")) == 3 and acked(nextcloud, "content_providers") == {mail})
    assert nextcloud.queue_rows()["files"] == [] and nextcloud.queue_rows()["content_providers"] == []
    assert dict(nextcloud.file_fetches) == {budget: 1, hiking: 1, shared: 1}
    # file bytes are asked for as a user who can read the file, with the app's signature and identity encoding
    fetch = next(r for r in nextcloud.requests if r.path.endswith(f"/files/{budget}"))
    assert fetch.query["userId"] == "alice" and fetch.user == ""
    assert fetch.headers["accept-encoding"] == "identity"
    await pull_app.drain_embeddings()
    alice = await pull_app.search("alice", "travel budget Berlin office")
    bob = await pull_app.search("bob", "travel budget Berlin office hiking green label")
    assert f"files__default: {budget}" in alice and "mail__mail: 42" in alice
    assert f"files__default: {budget}" not in bob and "mail__mail: 42" not in bob
    assert f"files__default: {hiking}" in bob
    counters = (await pull_app.status())["loops"]["documents"]["counters"]
    assert counters["indexed"] == 4 and counters["acknowledged"] == 4


async def test_invalid_items_are_acknowledged_and_counted_and_never_block_the_batch(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    good = nextcloud.add_file(["alice"], "files/label.txt", LABEL)
    no_users = nextcloud.add_raw_file_item(
        {
            "userIds": [],
            "reference": "files__default: 9",
            "title": "x",
            "content": None,
            "modified": 1,
            "type": "text/plain",
            "provider": "files__default",
            "size": 1,
        }
    )
    bad_ref = nextcloud.add_raw_file_item(
        {
            "userIds": ["alice"],
            "reference": "no-provider-here",
            "title": "x",
            "content": None,
            "modified": 1,
            "type": "text/plain",
            "provider": "files__default",
            "size": 1,
        }
    )
    video = nextcloud.add_raw_file_item(
        {
            "userIds": ["alice"],
            "reference": "files__default: 10",
            "title": "clip.mp4",
            "content": None,
            "modified": "1700000000",
            "type": "video/mp4",
            "provider": "files__default",
            "size": 10,
        }
    )
    superscript = nextcloud.add_raw_file_item(
        {
            "userIds": ["alice"],
            "reference": "files__default: 11",
            "title": "x",
            "content": None,
            "modified": "²",
            "type": "text/plain",
            "provider": "files__default",
            "size": 1,
        }
    )  # '²'.isdigit() is True, int('²') fails: it must fail alone
    empty_text = nextcloud.add_content_item(["alice"], item_id="43", content="   ")
    nul_title = nextcloud.add_content_item(
        ["alice"], item_id="44", title="Re:\x00 nul", content="A mail with a NUL title"
    )
    good_row = nextcloud.file_row_id(good)
    await until(lambda: acked(nextcloud, "files") == {good_row, no_users, bad_ref, video, superscript})
    await until(lambda: acked(nextcloud, "content_providers") == {empty_text, nul_title})
    status = await pull_app.status()
    assert status["loops"]["documents"]["counters"]["invalid"] == 5
    assert status["loops"]["documents"]["counters"]["indexed"] == 2  # the NUL title is stored without the NUL
    assert 10 not in nextcloud.file_fetches and 9 not in nextcloud.file_fetches  # never fetched
    await pull_app.drain_embeddings()
    assert (await pull_app.search("alice", "green label"))[0] == f"files__default: {good}"
    assert (await pull_app.search("alice", "mail with a NUL title"))[0] == "mail__mail: 44"


async def test_transient_file_errors_are_retried_in_process_and_permanent_ones_acknowledged(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    saving = nextcloud.add_file(["alice"], "files/saving.md", BUDGET, mimetype="text/markdown")
    flaky = nextcloud.add_file(["alice"], "files/flaky.txt", HIKING)
    dropped = nextcloud.add_file(["alice"], "files/dropped.txt", LABEL * 200)
    gone = nextcloud.add_file(["alice", "bob", "carol", "dave"], "files/gone.txt", b"never fetched whole")
    # the first reader's share was taken back: Nextcloud answers 404 for her, the file is still there for the next
    moved = nextcloud.add_file(["erin", "alice"], "files/moved.txt", b"The numbat21x plan is approved.")
    unreadable = nextcloud.add_file(["alice"], "files/locked.txt", b"cannot be opened")
    nextcloud.chunk_size = 512
    nextcloud.file_faults[saving] = deque([400, 400])  # context_chat#264: 400 while the file is being saved
    nextcloud.file_faults[flaky] = deque([500, 429, 503])
    nextcloud.file_faults[dropped] = deque(["drop"])
    nextcloud.file_faults[gone] = deque([404] * 5)  # gone for everyone: three readers asked, then dropped
    nextcloud.file_faults[moved] = deque([404])
    nextcloud.file_faults[unreadable] = deque([422] * 5)  # unreadable for all five tries: acknowledged as failed
    await until(lambda: len(acked(nextcloud, "files")) == 6)
    assert nextcloud.file_fetches[saving] == 3 and nextcloud.file_fetches[flaky] == 4
    assert nextcloud.file_fetches[dropped] == 2
    assert nextcloud.file_fetches[gone] == 3 and nextcloud.file_fetches[unreadable] == 5
    assert nextcloud.file_fetches[moved] == 2
    counters = (await pull_app.status())["loops"]["documents"]["counters"]
    assert counters["indexed"] == 4 and counters["failed"] == 2 and counters["fetch_retries"] == 11
    await pull_app.drain_embeddings()
    assert (await pull_app.search("alice", "travel budget Berlin office"))[0] == f"files__default: {saving}"
    assert (await pull_app.search("alice", "hiking in the Alps"))[0] == f"files__default: {flaky}"
    assert (await pull_app.search("alice", "Ethical AI Rating green label"))[0] == f"files__default: {dropped}"
    assert (await pull_app.search("alice", "numbat21x plan approved"))[0] == f"files__default: {moved}"


async def test_a_file_whose_read_fails_once_with_422_is_tried_again_and_indexed(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    # on S3 object storage a failed read of the object (a timeout, a SlowDown) makes fopen() fail: PHP answers 422
    budget = nextcloud.add_file(["alice"], "files/budget.txt", BUDGET)
    nextcloud.file_faults[budget] = deque([422])
    row = nextcloud.file_row_id(budget)
    await until(lambda: row in acked(nextcloud, "files"))
    # before: acknowledged as failed at the first 422, so the file stayed out of the index until it next changed
    assert nextcloud.file_fetches[budget] == 2 and _counters(pull_app)["indexed"] == 1
    await pull_app.drain_embeddings()
    assert (await pull_app.search("alice", "travel budget Berlin office"))[0] == f"files__default: {budget}"


async def test_a_file_that_keeps_failing_is_left_locked_not_acknowledged(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    stuck = nextcloud.add_file(["alice"], "files/stuck.txt", BUDGET)
    fine = nextcloud.add_file(["alice"], "files/fine.txt", HIKING)
    nextcloud.file_faults[stuck] = deque([500] * 10)
    fine_row, stuck_row = nextcloud.file_row_id(fine), nextcloud.file_row_id(stuck)
    await until(lambda: acked(nextcloud, "files") == {fine_row})
    await until(lambda: (pull_app.engine.pull is not None) and "left_locked" in _counters(pull_app))
    assert nextcloud.file_fetches[stuck] == 5  # pull.fetch_attempts
    assert stuck_row in nextcloud.locked_rows()["files"] and stuck_row not in acked(nextcloud, "files")


async def test_a_batch_waits_out_nextcloud_maintenance_instead_of_leaving_its_files_locked(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    budget = nextcloud.add_file(["alice"], "files/budget.txt", BUDGET)
    row = nextcloud.file_row_id(budget)

    def maintenance_from_the_first_download(request: RecordedRequest) -> None:
        if request.path.endswith(f"/files/{budget}"):
            nextcloud.maintenance.set()  # `occ maintenance:mode --on` (or an upgrade) right after the claim
            nextcloud.on_request = None

    nextcloud.on_request = maintenance_from_the_first_download
    await until(nextcloud.maintenance.is_set, what="the download of the claimed file")
    # maintenance outlasts the download's tries (pull.fetch_attempts: 0.55 s of backoff with FAST_PULL)
    await asyncio.sleep(2.0)
    nextcloud.maintenance.clear()
    # before: the file's five tries ran out during maintenance and its row stayed locked for 24 h
    await until(lambda: row in acked(nextcloud, "files"), timeout_s=15, what="the file indexed after maintenance")
    assert nextcloud.file_fetches[budget] == 1 and _counters(pull_app)["left_locked"] == 0
    await pull_app.drain_embeddings()
    assert (await pull_app.search("alice", "travel budget Berlin office"))[0] == f"files__default: {budget}"


def _counters(pull_app: PullApp) -> dict[str, int]:
    loops = pull_app.app.extensions["ccb_lifecycle"].loops.snapshot()
    counters: dict[str, int] = loops["documents"]["counters"]
    return counters


async def test_compressed_and_slow_downloads_are_stored_as_the_original_bytes(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    nextcloud.gzip_responses = True
    nextcloud.chunk_size = 64
    slow = nextcloud.add_file(["alice"], "files/slow.txt", LABEL)
    nextcloud.slow_files[slow] = 0.01
    await until(lambda: len(acked(nextcloud, "files")) == 1)
    await pull_app.drain_embeddings()
    assert await pull_app.search("alice", "green label open model data code") == [f"files__default: {slow}"]


async def test_files_larger_than_the_limit_are_refused_before_and_while_streaming(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    big = b"a" * (3 * 1024 * 1024)  # ingest.max_part_mb is 2 in these tests
    # this row claims 10 bytes for the big file: the declared size is not trusted, the download is cut at the limit
    lying = nextcloud.add_raw_file_item(
        {
            "userIds": ["alice"],
            "reference": "files__default: 7777",
            "title": "big.txt",
            "content": None,
            "modified": 1,
            "type": "text/plain",
            "provider": "files__default",
            "size": 10,
        }
    )
    nextcloud.add_file(["alice"], "files/big.txt", big, file_id=7777)  # a second row, with the true size
    honest = nextcloud.file_row_id(7777)
    await until(lambda: acked(nextcloud, "files") == {lying, honest})
    assert nextcloud.file_fetches[7777] == 1  # the honest row is refused without a download
    assert _counters(pull_app)["failed"] == 2
    spool = pull_app.settings.storage.spool_dir
    assert not spool.exists() or list(spool.iterdir()) == []


def _mail(item_id: str, **fields: object) -> dict[str, object]:
    """A valid content-provider item with some fields replaced."""
    item: dict[str, object] = {"userIds": ["alice"], "reference": f"mail__mail: {item_id}", "title": "Re: budget",
                               "content": f"Mail {item_id} about the travel budget", "modified": 1700000000,
                               "type": "text/plain", "provider": "mail__mail", "size": 40}  # fmt: skip
    return {**item, **fields}


async def test_items_postgresql_cannot_store_are_acknowledged_as_invalid_with_their_reason(
    pull_app: PullApp, nextcloud: FakePullNextcloud, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="quart_app.pull")
    good_file = nextcloud.add_file(["alice"], "files/label.txt", LABEL)
    good_mail = nextcloud.add_raw_content_item(_mail("60"))
    # a surrogate in a title or a content is replaced, not a reason to lose the item
    odd_text = nextcloud.add_raw_content_item(
        _mail("71", title="Re: caf\ud800", content="The quokka\udfff budget is approved for Tuesday")
    )
    # each would fail in the database (NUL, bigint overflow), crash the whole claim (NaN, 5,000 digits) or be
    # stored under a forged id (a trailing newline passed the old '$' pattern); none may touch its siblings
    bad = {
        nextcloud.add_raw_content_item(_mail("61", userIds=["al\x00ice"])): "userIds 'al\\x00ice' must not",
        nextcloud.add_raw_content_item(_mail("62", userIds=["alice", "bob\x1b[31m"])): "must not contain control",
        nextcloud.add_raw_content_item(_mail("63", type="text/plain\x00")): "type 'text/plain\\x00' must not contain",
        nextcloud.add_raw_content_item(_mail("64", modified=2**63)): "modified must be a whole number between",
        nextcloud.add_raw_content_item(_mail("65", modified=float("nan"))): "modified must be a whole number between",
        nextcloud.add_raw_content_item(_mail("66", size="9" * 5000)): "size must be a whole number between",
        nextcloud.add_raw_content_item(_mail("67", size=-1.5e300)): "size must be a whole number between",
        nextcloud.add_raw_content_item(_mail("68", reference="mail__mail: 68\n")): "is not '<app>__<provider>: <",
        nextcloud.add_raw_content_item(_mail("69", provider="mail__mail\n")): "is not '<app>__<provider>'",
        # valid JSON ("\ud800") that UTF-8 cannot encode: it crashed the loop and left the batch locked for 24 h
        nextcloud.add_raw_content_item(_mail("70", userIds=["al\udc80ice"])): "must not contain lone UTF-16 surr",
        # too long for PostgreSQL's index (random hex does not compress): failed in the database, retried for 24 h
        nextcloud.add_raw_content_item(_mail("72", userIds=[secrets.token_hex(1500)])): "3000 characters long; the",
        nextcloud.add_raw_content_item(_mail("73", reference="mail__mail: " + "7" * 600)): "612 characters",
        nextcloud.add_raw_content_item(_mail("74", provider="mail__" + "m" * 600)): "606 characters long; the limit",
        nextcloud.add_raw_content_item(_mail("75", type="text/" + "x" * 300)): "305 characters long; the limit is 255",
    }  # fmt: skip
    good_row = nextcloud.file_row_id(good_file)
    await until(
        lambda: acked(nextcloud, "content_providers") == {good_mail, odd_text, *bad}, what="every row acknowledged"
    )
    await until(lambda: acked(nextcloud, "files") == {good_row})
    assert nextcloud.queue_rows()["content_providers"] == []
    counters = (await pull_app.status())["loops"]["documents"]["counters"]
    assert counters["invalid"] == len(bad) and counters["indexed"] == 3 and "poll_errors" not in counters
    dropped = [r.getMessage() for r in caplog.records if "is invalid and dropped" in r.getMessage()]
    for row_id, reason in bad.items():
        assert any(f"content_providers row {row_id} is invalid and dropped: " in m and reason in m for m in dropped), (
            row_id,
            reason,
            dropped,
        )
    await pull_app.drain_embeddings()
    found = await pull_app.search("alice", "mail about the travel budget")
    assert found[0] == "mail__mail: 60"
    assert not [f for f in found if f.startswith("mail__mail") and f not in (found[0], "mail__mail: 71")]
    assert (await pull_app.search("alice", "quokka budget approved Tuesday"))[0] == "mail__mail: 71"
    assert (await pull_app.search("alice", "green label"))[0] == f"files__default: {good_file}"


async def test_a_file_shared_with_a_group_of_twenty_thousand_is_indexed_with_its_batch(
    pull_app: PullApp, nextcloud: FakePullNextcloud
) -> None:
    # a group folder: one userIds entry per member's mount; a lock per reader overflowed PostgreSQL's lock table
    # ("out of shared memory"), the loop crashed and the whole batch stayed locked, every day again
    members = [f"member{n:05d}" for n in range(20_000)]
    handbook = nextcloud.add_file(members, "files/Group/handbook.txt", b"The wombat88x handbook: onboarding steps.")
    label = nextcloud.add_file(["alice"], "files/label.txt", LABEL)
    rows = {nextcloud.file_row_id(handbook), nextcloud.file_row_id(label)}
    await until(lambda: acked(nextcloud, "files") == rows, timeout_s=120, what="both files acknowledged")
    counters = (await pull_app.status())["loops"]["documents"]["counters"]
    assert counters["indexed"] == 2 and "crashes" not in counters, counters
    await pull_app.drain_embeddings()
    for member in (members[0], members[12_345], members[-1]):
        assert (await pull_app.search(member, "wombat88x handbook onboarding"))[0] == f"files__default: {handbook}"
    assert f"files__default: {handbook}" not in await pull_app.search("alice", "wombat88x handbook onboarding")


async def test_a_source_busy_on_another_replica_is_left_for_later_and_its_batch_goes_on(
    pull_app: PullApp, nextcloud: FakePullNextcloud, fresh_dsn: str
) -> None:
    busy = "files__default: 7301"
    with psycopg.connect(fresh_dsn, autocommit=True) as other_replica:
        # another replica indexes this source: its claim holds the source's lock
        other_replica.execute(
            "SELECT pg_advisory_lock(%s + %s, hashtext(%s))", (LOCK_CLASS_BASE, KIND_NUMBERS["source"], busy)
        )
        nextcloud.add_file(["alice"], "files/busy.txt", b"The potoroo73x notes.", file_id=7301)
        label_row = nextcloud.file_row_id(nextcloud.add_file(["alice"], "files/label.txt", LABEL))
        # before: the whole batch stayed locked in Nextcloud for 24 h, the label with it
        await until(lambda: acked(nextcloud, "files") == {label_row}, what="the label indexed")
        counters = (await pull_app.status())["loops"]["documents"]["counters"]
        assert counters["indexed"] == 1 and counters["left_locked"] == 1, counters
        assert nextcloud.file_fetches[7301] == 0


async def test_a_source_another_replica_lets_go_of_during_the_tries_is_indexed_with_its_batch(
    pull_app: PullApp, nextcloud: FakePullNextcloud, fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="quart_app.pull")
    busy = "files__default: 7302"
    with psycopg.connect(fresh_dsn, autocommit=True) as other_replica:
        other_replica.execute(
            "SELECT pg_advisory_lock(%s + %s, hashtext(%s))", (LOCK_CLASS_BASE, KIND_NUMBERS["source"], busy)
        )
        row = nextcloud.file_row_id(
            nextcloud.add_file(["alice"], "files/busy.txt", b"The bettong74x notes.", file_id=7302)
        )
        await until(lambda: any("already being processed" in r.getMessage() for r in caplog.records), what="a try")
        other_replica.execute("SELECT pg_advisory_unlock_all()")
        # before: the failed try stamped the batch's own sources as changed, so every later try found them stale
        await until(lambda: row in acked(nextcloud, "files"), what="the file indexed in the same batch")
    assert not [r for r in caplog.records if "changed since the poll" in r.getMessage()]


async def test_a_file_the_loader_cannot_read_is_acknowledged_and_logged_once_by_its_title(
    pull_app: PullApp, nextcloud: FakePullNextcloud, caplog: pytest.LogCaptureFixture
) -> None:
    # on a real Nextcloud 34 the poller logged the ingest service's warning a second time, both naming the spool file
    caplog.set_level(logging.WARNING)
    broken = nextcloud.add_file(["alice"], "files/Berichte/kaputt.pdf", b"not a pdf", mimetype="application/pdf")
    await until(lambda: len(acked(nextcloud, "files")) == 1)
    source_id = f"files__default: {broken}"
    [line] = [r.getMessage() for r in caplog.records if source_id in r.getMessage()]
    assert f"failed: CorruptDocumentError: 'files/Berichte/kaputt.pdf' (source {source_id!r}): declared as" in line
