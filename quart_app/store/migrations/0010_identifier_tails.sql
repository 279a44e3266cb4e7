-- A qualified name's tails are lexemes too: `Response.iter_content()` holds `iter_content`, `os.path.join` holds
-- `path.join`, `/var/www/nextcloud/config/config.php` holds `config/config.php` and `config.php`. PostgreSQL's parser
-- reads a dotted name as one "host" lexeme (`response.iter`), so a question naming the method or the file did not
-- find it as an identifier (bench/quality `req-stream`: the chunk saying `Response.iter_content()` was the full-text
-- leg's 20th, now its 2nd).
-- A tail is kept when it starts with a letter or _ right after a . : or / and is an identifier itself: a lone word
-- (`join`, `php`) would change what the question's words count (paraphrase Hit@1 0.85 -> 0.80), and version 2.3 is
-- not 10.2.3 (a held-out fact question lost its file that way). The question's identifiers are unchanged, so
-- `os.path.join` still asks for that name only.
CREATE OR REPLACE FUNCTION ccb_identifier_lexemes(body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_to_tsvector(ARRAY(
        SELECT DISTINCT lexeme FROM (
            SELECT lower(btrim(m[1], '.-:/')) AS identifier
              FROM regexp_matches(body, '([A-Za-z0-9_:./-]+)', 'g') AS m
             WHERE m[1] ~ '[A-Za-z0-9_][_:./-][A-Za-z0-9_]'
        ) found
        CROSS JOIN LATERAL (
            SELECT found.identifier
            UNION ALL
            SELECT btrim(substr(found.identifier, at + 1), '.-:/')
              FROM generate_series(1, length(found.identifier)) AS at
             WHERE found.identifier ~ '[.:/]' AND substr(found.identifier, at, 1) IN ('.', ':', '/')
               AND substr(found.identifier, at + 1, 1) ~ '[a-z_]'
        ) tails(lexeme)
        WHERE lexeme ~ '[a-z0-9_][_:./-][a-z0-9_]' AND length(found.identifier) <= 200
    ))
$$;

-- the stored column is recomputed for every row with the new function (a table rewrite, as in 0007)
ALTER TABLE chunks DROP COLUMN tsv;
ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', header || ' ' || text) || ccb_identifier_lexemes(header || ' ' || text)
) STORED;
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);
