-- Identifiers (trusted_domains, files:scan, config.php, os.path.join) become lexemes of the full-text column, beside
-- the words PostgreSQL's parser splits them into, so a question naming one finds its chunks through the GIN index
-- alone: as a phrase ('trusted' <-> 'domains') every chunk holding both words had to be fetched and rechecked (at
-- 200k chunks, 4,700 rows for `not_done`). The rule is lexical_query.identifiers_in's: ASCII letters and digits
-- joined by _ : . / -, ends stripped of . - : /, lower-cased, at most 200 characters. The column is recomputed for
-- every row (a table rewrite; PostgreSQL cannot change a generated column's expression in place before 17).
CREATE FUNCTION ccb_identifier_lexemes(body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_to_tsvector(ARRAY(
        SELECT DISTINCT identifier FROM (
            SELECT lower(btrim(m[1], '.-:/')) AS identifier
              FROM regexp_matches(body, '([A-Za-z0-9_:./-]+)', 'g') AS m
             WHERE m[1] ~ '[A-Za-z0-9_][_:./-][A-Za-z0-9_]'
        ) found
        WHERE identifier <> '' AND length(identifier) <= 200
    ))
$$;

ALTER TABLE chunks DROP COLUMN tsv;
ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', header || ' ' || text) || ccb_identifier_lexemes(header || ' ' || text)
) STORED;
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);
