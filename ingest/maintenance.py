"""Maintenance of an index apart from the ingest path: exact delete, the vector repair after a crash, and the
community refresh that follows every change."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from graphdex.common.ids import document_id
from graphdex.graph.model import SEARCHABLE_TYPES, EdgeType, NodeType
from graphdex.ingest.community_layer import CommunityPolicy, refresh_communities
from graphdex.ingest.derive import Derivation
from graphdex.ingest.merge import without_chunks
from graphdex.ingest.target import IndexTarget

log = logging.getLogger(__name__)


@dataclass
class DeleteReport:
    document_id: str
    chunks: int
    nodes_deleted: int
    nodes_updated: int


class Maintenance:
    def __init__(self, *, target: IndexTarget, derivation: Derivation = Derivation(), communities: CommunityPolicy = CommunityPolicy()) -> None:
        self.target = target
        self.derivation = derivation
        self.communities = communities

    def resolve_document(self, ref: str) -> str | None:
        """A document id from an id or the source it was ingested from (a path is also tried absolute)."""
        candidates = [ref, document_id(ref)]
        try:
            candidates.append(document_id(str(Path(ref).expanduser().resolve())))
        except (OSError, RuntimeError):
            pass
        for candidate in candidates:
            node = self.target.store.get_nodes([candidate]).get(candidate)
            if node is not None and node.type == NodeType.DOCUMENT:
                return candidate
        return None

    def delete_document(self, ref: str) -> DeleteReport:
        """Delete a document by id or source: what only it supported goes, shared elements lose its support."""
        doc_id = self.resolve_document(ref)
        if doc_id is None:
            raise KeyError(f"no document with id or source {ref!r}")
        report = self.remove_document(doc_id)
        self.refresh_communities()
        self.target.vectors.save()
        return report

    def remove_document(self, doc_id: str) -> DeleteReport:
        """Take a document out of the graph and vectors in one write (communities are left to the caller)."""
        store = self.target.store
        chunk_ids = sorted(e.target for e in store.edges_of(doc_id, [EdgeType.HAS_CHUNK]) if e.source == doc_id)
        gone = set(chunk_ids)
        node_ids, edge_keys = store.supported_by(chunk_ids)
        removal = without_chunks(store.get_nodes(node_ids).values(), store.get_edges(edge_keys).values(), gone, gone | {doc_id}, self.derivation)
        deleted_ids = {n.id for n in removal.deleted} | gone | {doc_id}
        dropped_vectors: dict[NodeType, list[str]] = {NodeType.CHUNK: chunk_ids}
        for node in removal.deleted:
            if node.type in SEARCHABLE_TYPES:
                dropped_vectors.setdefault(node.type, []).append(node.id)
        self.target.apply(self.target.embed(removal.to_embed), removal.updated, removal.kept_edges, delete_nodes=sorted(deleted_ids),
                          delete_edges=removal.dropped_edges, delete_vectors=dropped_vectors)
        return DeleteReport(doc_id, len(chunk_ids), len(deleted_ids), len(removal.updated))

    def refresh_communities(self) -> int:
        return refresh_communities(self.target, self.communities)

    def repair(self) -> int:
        """Make every vector index hold exactly the vectors of the stored nodes of its type; returns fixes made."""
        store, vectors = self.target.store, self.target.vectors
        fixes = 0
        for type_ in SEARCHABLE_TYPES:
            stored = store.node_ids(type_)
            indexed = vectors[type_].ids()
            extra = indexed - stored
            missing = sorted(stored - indexed)
            new = self.target.embed(list(store.get_nodes(missing).values())) if missing else {}
            self.target.apply(new, delete_vectors={type_: extra})
            fixes += len(extra) + len(missing)
        if fixes:
            log.warning("repaired %d vector entries that did not match the graph (an earlier run was interrupted)", fixes)
            vectors.save()
        return fixes
