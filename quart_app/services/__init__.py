"""Engine services: plain async Python behind the routes (ingest, embedding worker, deletion, access, status,
retrieval, answers). They know nothing of Quart; the store below them is the only place with SQL."""
