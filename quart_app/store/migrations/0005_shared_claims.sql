-- What every app replica on this database shares beyond the index itself (store/claim_store.py, app_state_store.py).
-- Claims on sources are session advisory locks, not rows: they end with the connection of a replica that crashes.
-- What is kept here is when each claim key last changed, stamped from one clock, so a load that arrived (took a
-- stamp) before an access change or delete on any replica is found stale and not written.
CREATE SEQUENCE order_clock;
CREATE TABLE order_changes (
    -- 1 source, 2 provider, 3 user
    kind       smallint NOT NULL,
    name       text NOT NULL,
    stamp      bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, name)
);
CREATE INDEX order_changes_changed_at_idx ON order_changes (changed_at);

-- the enabled flag AppAPI sets with PUT /enabled on any replica; every replica reads it from here
CREATE TABLE app_enabled (
    singleton  bool PRIMARY KEY DEFAULT true CHECK (singleton),
    enabled    bool NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
