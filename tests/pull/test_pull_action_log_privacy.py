"""Pull mode, an action the database refuses: the actions queue logs and shows why without what PostgreSQL's message
quotes (here a trigger an admin added, whose RAISE quotes the chunk a delete would remove)."""

from __future__ import annotations

import json
import logging

import psycopg
import pytest
from async_wait import until
from nextcloud_pull_fake import FakePullNextcloud
from pull_kit import PullApp, acked
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
