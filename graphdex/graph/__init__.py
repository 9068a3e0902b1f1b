"""Storage: the heterogeneous graph model, graph stores (SQLite on disk, Neo4j), the PageRank projection and HNSW vector indexes.

This package knows nothing of ingestion or querying; both build on it.
"""
