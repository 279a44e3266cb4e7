-- A cached vector lives only as long as a chunk with its text: deleting a user's, a provider's or a re-indexed
-- document's chunks removes the text hashes and vectors no chunk uses any more, in the same transaction.
CREATE INDEX chunks_text_hash_idx ON chunks (text_hash);

CREATE FUNCTION ccb_prune_embedding_cache() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM embedding_cache e
     WHERE e.text_hash IN (SELECT DISTINCT text_hash FROM gone)
       AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.text_hash = e.text_hash);
    RETURN NULL;
END;
$$;

CREATE TRIGGER chunks_prune_embedding_cache
    AFTER DELETE ON chunks REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION ccb_prune_embedding_cache();
