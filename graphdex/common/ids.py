"""Stable, content-derived identifiers.

Ids are hashes of what identifies a thing (a document's source, an entity's resolved name) so that the same input
always lands on the same node: this is what makes re-ingestion a no-op and lets two stores be compared node by node.
"""

from __future__ import annotations

import hashlib


def stable_hash(*parts: str, length: int = 16) -> str:
    """Hex digest of the parts, joined unambiguously."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()[:length]


def document_id(source: str) -> str:
    return "doc-" + stable_hash(source)


def chunk_id(doc_id: str, index: int) -> str:
    """Chunk ids embed their document id so provenance (chunk -> document) needs no lookup."""
    return f"{doc_id}:{index:05d}"


def document_of_chunk(chunk_id_: str) -> str:
    return chunk_id_.rsplit(":", 1)[0]


def entity_id(key: str) -> str:
    return "ent-" + stable_hash(key)


def relation_id(source_id: str, target_id: str) -> str:
    first, second = sorted((source_id, target_id))
    return "rel-" + stable_hash(first, second)


def community_id(first_member: str) -> str:
    """Named by the community's first member id (members are disjoint across communities, so ids are unique): a
    community of thousands that gains or loses a few members keeps its id, and its thousands of membership edges
    stay as they are. (Named by all its members, every such change rewrote them all.)"""
    return "com-" + stable_hash(first_member)


def content_hash(text: str) -> str:
    return stable_hash(text, length=32)
