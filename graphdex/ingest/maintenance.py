"""Maintenance of an index apart from the ingest path: exact delete, recovery after a crash, and the community
refresh that follows every change.

Crash safety rests on three facts: every graph write is atomic; an operation's changes end with one vector save that
clears the dirty marker set durably before its first change (``IndexTarget.apply``); and everything else can be
recomputed from the graph: the vectors from their nodes' text, and the community layer from scratch. A start that
finds the marker does both. What a dead process had touched is unknown, so its community refresh and that of the
operation after it (the command run again) are from scratch: that operation then ends exactly where a clean run
does."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from graphdex.common.faults import crash_point
from graphdex.common.ids import document_id
from graphdex.graph.model import SEARCHABLE_TYPES, EdgeType, NodeType
from graphdex.ingest.community_layer import CommunityPolicy, refresh_communities
from graphdex.ingest.derive import Derivation
from graphdex.ingest.merge import without_chunks
from graphdex.ingest.target import IndexTarget, text_digest

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
        crash_point("delete.graph_written")
        self.finish()
        return report

    def remove_document(self, doc_id: str, recycle: bool = False) -> DeleteReport:
        """Take a document out of the graph and vectors in one write (communities are left to the caller).
        ``recycle``: a new version follows in this operation, which may reuse the deleted vectors."""
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
        if recycle:
            self.target.recycle([*store.get_nodes(chunk_ids, contributions=False).values(), *removal.deleted])
        self.target.apply(self.target.embed(removal.to_embed), removal.updated, removal.kept_edges, delete_nodes=sorted(deleted_ids),
                          delete_edges=removal.dropped_edges, delete_vectors=dropped_vectors)
        return DeleteReport(doc_id, len(chunk_ids), len(deleted_ids), len(removal.updated))

    def refresh_communities(self, *, from_scratch: bool = False) -> int:
        """The community layer after the writes since the last refresh: only the communities they touched are
        clustered again (all of them ``from_scratch``, or when what was touched is unknown); then the record of
        touches starts afresh."""
        changes = self.target.changes
        written = refresh_communities(self.target, self.communities, None if from_scratch or changes.everything else changes)
        changes.clear()
        return written

    def finish(self) -> None:
        """End an operation that changed the graph: the community layer follows it, then one save makes it complete."""
        self.refresh_communities()
        crash_point("finish.communities_written")
        self.target.vectors.save(complete=True)

    def recover(self) -> int:
        """Bring vectors and communities in line with the graph after an interrupted run; returns the fixes made.

        After a crash (the dirty marker survived): every vector index is made to hold exactly the ids of its type's
        stored nodes, every vector to be made from its node's current text, and the community layer is recomputed
        from scratch, as is the next refresh (the operation that crashed, run again, must end as a clean run does).
        Without the marker the last operation ended with a complete save, which left graph and vectors agreeing: only
        the counts are compared (no index is loaded, no node id read), and only a type whose vector count differs from
        its node count has its ids compared and brought in line (vectors changed by hand, or by a tool that left no
        marker). Vectors an older graphdex wrote are checked once for ids held twice, which are embedded again."""
        vectors = self.target.vectors
        verify = vectors.dirty
        rebuilt = vectors.drop_shadowed()  # an index an older graphdex wrote: checked once, its ids held twice dropped
        if verify:
            types = list(SEARCHABLE_TYPES)
        else:
            stored, indexed = self.target.store.counts()["nodes"], vectors.counts()
            types = [t for t in SEARCHABLE_TYPES if t in (rebuilt or ()) or stored.get(str(t), 0) != indexed.get(str(t), 0)]
        fixes = sum(self._repair_vectors(type_, verify) for type_ in types)
        if verify:
            fixes += self.refresh_communities(from_scratch=True)
            self.target.changes.everything = True
            log.warning("an earlier run ended before its last save: %d vector or community entries were brought in line with the graph", fixes)
            self.target.vectors.save(complete=True)
        elif fixes or rebuilt is not None:
            if fixes:
                log.warning("repaired %d vector entries that did not match the graph", fixes)
            self.target.vectors.save(complete=True)
        return fixes

    def _repair_vectors(self, type_: NodeType, by_content: bool) -> int:
        store, index = self.target.store, self.target.vectors[type_]
        stored = store.node_ids(type_)
        indexed = index.ids()
        extra = indexed - stored
        wrong = stored - indexed
        if by_content:
            digests = index.digests()
            wrong |= {node.id for node in store.iter_nodes(type_) if node.id in digests and digests[node.id] != text_digest(node)}
        fresh = self.target.embed(list(store.get_nodes(sorted(wrong)).values())) if wrong else {}
        if extra or fresh:
            self.target.apply(fresh, delete_vectors={type_: extra})
        return len(extra) + len(wrong)
