"""Pull mode, a write the database refuses: the queues log and show why without what PostgreSQL's message quotes (a
trigger an admin added, whose RAISE quotes the chunk a delete would remove; a CHECK whose DETAIL quotes the row)."""

from __future__ import annotations

import json
import logging
from collections import deque

import psycopg
import pytest
from async_wait import until
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import PullApp, acked, chat, task_done
from secret_documents import SECRET, quoted_secret

# refuses deleting a chunk, quoting it; USING ERRCODE makes it an integrity violation, so the action is dropped
KEEP_CHUNKS = """
CREATE FUNCTION keep_chunks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'chunk kept: %', OLD.text USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER keep_chunks BEFORE DELETE ON chunks FOR EACH ROW EXECUTE FUNCTION keep_chunks();
"""


async def test_a_delete_a_trigger_refuses_quoting_the_chunk_is_dropped_and_logged_without_its_text(
    pull_app: PullApp, nextcloud: FakePullNextcloud, fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="quart_app")
    file_id = nextcloud.add_file(["alice"], "files/memo.txt", SECRET.encode())
    await until(lambda: len(acked(nextcloud, "files")) == 1, what="the file acknowledged")
    async with await psycopg.AsyncConnection.connect(fresh_dsn, autocommit=True) as conn:
        await conn.execute(KEEP_CHUNKS.encode())
    action = nextcloud.add_action("delete_source_ids", {"sourceIds": [f"files__default: {file_id}"]})
    await until(lambda: action in acked(nextcloud, "actions"), what="the action acknowledged")
    await pull_app.actions_applied()
    status = await pull_app.status()
    assert status["loops"]["actions"]["counters"]["invalid"] == 1
    dropped = [r.getMessage() for r in caplog.records if "the database refuses it" in r.getMessage()]
    assert dropped == [
        "actions queue: delete_source_ids row 1 dropped: the database refuses it: SQLSTATE 23514, integrity"
        " constraint violation; PostgreSQL's message withheld: it may quote a value"
    ]
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert quoted_secret(logs + caplog.text + json.dumps(status)) == []


async def test_a_file_to_retry_the_database_refuses_to_keep_is_logged_without_its_row(
    pull_app: PullApp, nextcloud: FakePullNextcloud, fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="quart_app")
    async with await psycopg.AsyncConnection.connect(fresh_dsn, autocommit=True) as conn:
        # the kept row holds the file's path and readers: PostgreSQL's DETAIL ("Failing row contains") quotes them
        await conn.execute("ALTER TABLE pull_file_retries ADD CONSTRAINT nothing_kept CHECK (tries < 0) NOT VALID")
    file_id = nextcloud.add_file(["alice"], f"files/{SECRET}txt", b"Quarterly plans.")
    nextcloud.file_faults[file_id] = deque([500] * 5)  # every in-process try (pull.fetch_attempts) fails

    def refused() -> list[str]:
        return [r.getMessage() for r in caplog.records if "could not be kept" in r.getMessage()]

    await until(lambda: bool(refused()), what="the refused keep logged")
    assert refused()[0] == (
        'documents queue: 1 file(s) to try again later could not be kept: new row for relation "pull_file_retries"'
        ' violates check constraint "nothing_kept"'
    )
    assert quoted_secret(caplog.text) == []


# a row security policy an admin added that refuses reading a chunk, quoting it
REFUSE_READS = """
CREATE FUNCTION refuse_read(chunk text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'read refused: %', chunk;
END $$;
CREATE POLICY refuse_reads ON chunks USING (refuse_read(text));
ALTER TABLE chunks ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
"""


async def test_a_chat_task_the_database_fails_quoting_a_chunk_reports_and_logs_without_it(
    pull_app: PullApp, nextcloud: FakePullNextcloud, fresh_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="quart_app")
    nextcloud.add_file(["alice"], "files/memo.txt", SECRET.encode())
    await until(lambda: len(acked(nextcloud, "files")) == 1, what="the file acknowledged")
    await pull_app.drain_embeddings()
    async with await psycopg.AsyncConnection.connect(fresh_dsn, autocommit=True) as conn:
        await conn.execute(REFUSE_READS.encode())
    task = nextcloud.schedule_task("context_chat:context_chat", "alice", chat("Is the merger with Acme off?"))
    pull_app.app.extensions["ccb_engine"].pull.tasks.trigger()
    done = await task_done(nextcloud, task, timeout_s=60)
    assert done["status"] == "STATUS_FAILED", done
    assert done["errorMessage"].startswith(
        f"Unexpected errortask {task} failed in the database: RaiseException (SQLSTATE P0001, PL/pgSQL raise exception)"
    ), done
    logs = "\n".join(record.getMessage() for record in caplog.records)
    # the errorMessage goes to Nextcloud, which keeps it and shows it to admins; the question holds two of the words
    assert quoted_secret(json.dumps(done).replace("merger with Acme", "") + logs + caplog.text) == []
