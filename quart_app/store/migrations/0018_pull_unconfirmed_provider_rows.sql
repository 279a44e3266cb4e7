-- Content-provider rows of the PHP app's documents queue (5.4+) whose DELETE Nextcloud never confirmed. Such a row
-- lists its readers of when the provider submitted it, and Nextcloud may serve it again at any time (after its 24 h
-- lock, or whenever the app runs again): the actions that removed a reader since were forgotten two days after their
-- own acknowledgement, and the row served later gave the reader back. Now the row is named in every documents DELETE
-- until one is answered, and the applied actions naming its source, its provider or one of its readers are kept
-- until then. `providers` holds the full provider key and the bare id a delete_provider_id may name.
CREATE TABLE pull_unconfirmed_provider_rows (
    row_id    bigint PRIMARY KEY,
    source_id text NOT NULL,
    providers text[] NOT NULL,
    user_ids  text[] NOT NULL,
    lost_at   timestamptz NOT NULL DEFAULT now()
);
