-- The embedding queue is claimed in turn (every document's first chunk, then every second one, ...) so that a big file
-- does not hold back the files indexed after it; this index gives that order without sorting the whole queue.
CREATE INDEX chunks_queue_turn_idx ON chunks (ordinal, id) WHERE embed_state = 'queued';
