"""Clients and backends for the model services the app calls: the embedding service and the LLM backends."""
