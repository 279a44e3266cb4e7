-- Vectors of the optional multilingual model (retrieval.cross_lingual) for the same chunks, asked only for questions
-- in another language than the documents. A table of its own: the chunks table and its hot paths stay as they were,
-- a deleted chunk takes its vector along, and a model change empties the table in one statement. The dimension and
-- the HNSW index are bound by cross_lingual_store.bind_model, as for the main vectors.
CREATE TABLE cross_lingual_vectors (
    chunk_id  bigint PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
    embedding vector NOT NULL
);

-- singleton row: the model whose vectors are stored, and since when a question has needed them (backfill when_asked)
CREATE TABLE cross_lingual_model (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    model_id  text NOT NULL,
    dimension int NOT NULL CHECK (dimension > 0),
    wanted_at timestamptz NULL,
    bound_at  timestamptz NOT NULL DEFAULT now()
);
