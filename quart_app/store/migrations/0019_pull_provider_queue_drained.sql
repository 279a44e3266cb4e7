-- When a documents poll last found the PHP app's content-provider queue drained (5.4+: it served fewer provider rows
-- than asked, so it held no other one unclaimed). A provider row lists its readers of when it was submitted, and one
-- first served days after an action removed a reader (a backlog that long) gave the reader back: the action was
-- forgotten two days after its acknowledgement. Now an applied action that may concern a provider row (naming a user,
-- a provider or a source that is not a file) is kept until a drained poll more than a day after its receipt (every row
-- queued before it has been served by then, one left locked once served again), as well as two days after that.
CREATE TABLE pull_provider_queue_drained (
    singleton  bool PRIMARY KEY DEFAULT true CHECK (singleton),
    drained_at timestamptz NOT NULL
);
