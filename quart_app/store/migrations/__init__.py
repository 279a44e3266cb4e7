"""Numbered SQL migration files (NNNN_name.sql), applied in order by quart_app.store.migrator."""
