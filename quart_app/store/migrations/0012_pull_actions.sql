-- The actions the pull loop claimed from the PHP app's queue (5.4+), kept here before Nextcloud is told they are done.
-- Nextcloud serves a claimed row again only after 24 h, so an action it still held (a lost acknowledgement, one that
-- waited for its source) came back after the actions queued behind it and undid them (an allow replayed over a later
-- deny). Now every claimed action is stored and acknowledged at once, then applied from here in the order received;
-- a row Nextcloud serves again with the same action is recognised and not applied twice. Applied rows are kept two
-- days for that, then removed.
CREATE TABLE pull_actions (
    seq         bigserial PRIMARY KEY,
    row_id      bigint NOT NULL,
    type        text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz
);
CREATE INDEX pull_actions_row_id ON pull_actions (row_id);
CREATE INDEX pull_actions_waiting ON pull_actions (seq) WHERE done_at IS NULL;
