-- Chunks the cross-lingual model refused on their own (a batch it refuses is embedded again one chunk at a time, so
-- only the chunk it cannot read is left without a vector). They do not count as waiting: one such chunk must not keep
-- a user of a few files from the leg, nor be read first for an asking user again and again. The backfill's pass from
-- the first chunk still tries them (every rescan), and a vector written clears the row; a deleted chunk takes its row
-- along, and a model change empties the table.
CREATE TABLE cross_lingual_refused (
    chunk_id   bigint PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
    refused_at timestamptz NOT NULL DEFAULT now()
);
