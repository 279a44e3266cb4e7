-- Each chunk's header: the titles of the document sections around it ("Guide > Install > Linux"), written by the
-- chunker. It is embedded with the chunk's text (text_hash covers both) and searched with it, but never shown in a
-- prompt, whose passages are grouped under their document's title already. Rows from before have no header ('')
-- and keep their vectors and hashes; the full-text column is rebuilt from header and text (PostgreSQL 15 cannot
-- change a generated column's expression in place), so an existing index keeps answering lexical searches.
ALTER TABLE chunks ADD COLUMN header text NOT NULL DEFAULT '';
ALTER TABLE chunks DROP COLUMN tsv;
ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', header || ' ' || text)) STORED;
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);
