"""Plumbing shared by every graphdex package: settings, stable ids and the embedder."""
