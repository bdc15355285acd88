"""The engine: catalog, vectors, encoders, indexer and queries. Never imports Qt."""
