-- The status page's chart: one row per sampling interval (its start), written by the app's status_history loop,
-- which keeps at most status_history.samples rows (one a minute for 24 h by default) and prunes as it goes.
CREATE TABLE status_history (
    sampled_at      timestamptz PRIMARY KEY,
    -- chunks embedded in the span_s seconds before the sample
    span_s          real NOT NULL CHECK (span_s > 0),
    chunks_embedded int NOT NULL,
    queue_depth     int NOT NULL
);
