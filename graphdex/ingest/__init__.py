"""Ingestion: documents -> chunks -> extracted entities and relations -> merged into the graph and vector indexes."""
