"""Querying: question -> entry points -> propagation -> ranked, cited context (and an answer when an LLM is set)."""
