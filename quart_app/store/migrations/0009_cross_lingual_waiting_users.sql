-- Users whose question needed the cross-lingual leg: the backfill fills in their chunks' vectors first, the latest
-- asker's first, so that their next question finds their documents within minutes instead of after every other
-- chunk of the install. A row goes once none of that user's chunks waits for its vector.
CREATE TABLE cross_lingual_waiting_users (
    user_id  text PRIMARY KEY,
    asked_at timestamptz NOT NULL DEFAULT now()
);
