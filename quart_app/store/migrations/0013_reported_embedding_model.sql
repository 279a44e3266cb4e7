-- The model id the embedding service's responses name (OpenAI's "model" field), recorded from the first response
-- after the model was bound: an external service swapped to another model of the same dimension behind the same URL
-- was not noticed, and its vectors were mixed into the index. NULL until a response names one.
ALTER TABLE embedding_model ADD COLUMN reported_model text;
