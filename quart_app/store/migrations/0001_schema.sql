-- Documents, chunks, access rows and the embedding cache. The vector dimension is bound later by
-- Database.migrate(model_id, dimension), which types the embedding columns and builds the HNSW index.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE documents (
    source_id    text PRIMARY KEY,
    provider     text NOT NULL,
    title        text NOT NULL DEFAULT '',
    mimetype     text NOT NULL,
    modified     bigint NOT NULL,
    content_hash bytea NOT NULL,
    size         bigint NOT NULL,
    state        text NOT NULL CHECK (state IN ('indexed', 'failed')),
    error        text NULL,
    version      int NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_provider_idx ON documents (provider);
CREATE INDEX documents_state_idx ON documents (state);

CREATE TABLE chunks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id       text NOT NULL REFERENCES documents (source_id) ON DELETE CASCADE,
    version         int NOT NULL,
    ordinal         int NOT NULL,
    text            text NOT NULL,
    start_offset    int NOT NULL,
    token_count     int NOT NULL,
    text_hash       bytea NOT NULL,
    embedding       vector NULL,
    tsv             tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED,
    embed_state     text NOT NULL DEFAULT 'queued' CHECK (embed_state IN ('queued', 'embedded', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz NULL,
    lease_token     uuid NULL,
    last_error      text NULL,
    embedded_at     timestamptz NULL
);
CREATE INDEX chunks_source_id_idx ON chunks (source_id, version);
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);
CREATE INDEX chunks_queue_idx ON chunks (next_attempt_at, id) WHERE embed_state = 'queued';
CREATE INDEX chunks_embedded_at_idx ON chunks (embedded_at) WHERE embedded_at IS NOT NULL;

CREATE TABLE access (
    user_id   text NOT NULL,
    source_id text NOT NULL REFERENCES documents (source_id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, source_id)
);
CREATE INDEX access_source_id_idx ON access (source_id);

CREATE TABLE embedding_cache (
    text_hash bytea PRIMARY KEY,
    embedding vector NOT NULL
);

-- singleton row: the model whose vectors are stored
CREATE TABLE embedding_model (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    model_id   text NOT NULL,
    dimension  int NOT NULL CHECK (dimension > 0),
    bound_at   timestamptz NOT NULL DEFAULT now()
);
