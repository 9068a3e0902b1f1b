"""Storage: the heterogeneous graph model, graph stores (networkx on disk, Neo4j) and HNSW vector indexes.

This package knows nothing of ingestion or querying; both build on it.
"""
