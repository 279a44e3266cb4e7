-- Files of the PHP app's documents queue (5.4+) whose download failed all its in-process tries (a storage error, a
-- 403 from a proxy). Nextcloud serves a claimed row again only after its 24 h lock and has no way to release it, so
-- such a file used to wait a day, silently; now it is kept here and tried again by us minutes to hours later, while
-- its row stays locked for us, then acknowledged (indexed, or failed shortly before the lock ends). `item` is the
-- claimed item (source id, readers, title, type, mtime, size), `claimed_at` when Nextcloud locked the row for us.
CREATE TABLE pull_file_retries (
    kind        text NOT NULL,
    row_id      bigint NOT NULL,
    item        jsonb NOT NULL,
    claimed_at  timestamptz NOT NULL,
    tries       integer NOT NULL DEFAULT 0,
    next_try_at timestamptz NOT NULL,
    last_error  text NOT NULL,
    PRIMARY KEY (kind, row_id)
);
CREATE INDEX pull_file_retries_due ON pull_file_retries (next_try_at);
