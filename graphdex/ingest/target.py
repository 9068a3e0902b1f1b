"""The pair a writer keeps in step, the graph store and its vector indexes, with the embedder and lock they share.

Both the ingest path and maintenance (delete, repair, communities) write through it, so "embed outside the lock,
then add vectors and write the graph inside it" is written once; and so is the record of what the writes touched
(``CommunityChanges``), from which the community layer refreshes only the communities a write concerns.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np

from graphdex.common.embedder import Embedder
from graphdex.common.faults import crash_point
from graphdex.graph.model import SEARCHABLE_TYPES, Edge, EdgeKey, EdgeType, Node, NodeType
from graphdex.graph.store import GraphStore
from graphdex.graph.vectors import VectorChanges, VectorIndexes
from graphdex.ingest.derive import embedding_text

#: New vectors by node type: (node ids, one row per id, digests of the texts embedded).
NodeVectors = dict[NodeType, tuple[list[str], np.ndarray, list[str]]]


def text_digest(node: Node) -> str:
    """Names the text a node's vector stands for: recovery compares it to tell a stale vector from a current one."""
    return hashlib.blake2b(embedding_text(node).encode(), digest_size=8).hexdigest()


@dataclass
class CommunityChanges:
    """What the graph writes since the last community refresh touched: the entities written or at either end of a
    RELATED_TO edge written or deleted (a deleted entity's edges go with it: its neighbours count too), and the
    communities that lost a deleted member. An entity whose relations change is always touched, so the strength
    the community layer keeps for every other member is still current. The community layer's own
    writes (Community nodes, IN_COMMUNITY edges) are not touches. ``everything``: what was touched is unknown (a
    process died mid-operation), so the next refresh starts from scratch."""

    entities: set[str] = field(default_factory=set)
    communities: set[str] = field(default_factory=set)
    everything: bool = False

    def __bool__(self) -> bool:
        return bool(self.entities or self.communities or self.everything)

    def record(self, nodes: Sequence[Node], edges: Sequence[Edge], delete_edges: Sequence[EdgeKey], left: Iterable[str],
               neighbours: Iterable[str] = ()) -> None:
        """A graph write that succeeded; ``left``: the communities its deleted nodes belonged to, ``neighbours``: the
        entities related to its deleted nodes (both read before it)."""
        self.entities.update(n.id for n in nodes if n.type == NodeType.ENTITY)
        self.entities.update(neighbours)
        for edge in edges:
            if edge.type == EdgeType.RELATED_TO:
                self.entities.update((edge.source, edge.target))
        for source, type_, target in delete_edges:
            if type_ == EdgeType.RELATED_TO:
                self.entities.update((source, target))
        self.communities.update(left)

    def clear(self) -> None:
        self.entities.clear()
        self.communities.clear()
        self.everything = False


@dataclass(frozen=True, kw_only=True)
class IndexTarget:
    store: GraphStore
    vectors: VectorIndexes
    embedder: Embedder
    #: Held around each mutation (the write side of the service's readers-writer lock); embedding runs outside it.
    exclusive: Callable[[], AbstractContextManager[None]] = field(default=nullcontext)
    #: What the writes through this target touched since the last community refresh.
    changes: CommunityChanges = field(default_factory=CommunityChanges)
    #: Vectors of the nodes this operation deleted, by the digest of their text (``recycle``).
    recycled: dict[str, np.ndarray] = field(default_factory=dict)

    def embed(self, nodes: Sequence[Node]) -> NodeVectors:
        """The nodes' vectors by type: the slow part of a write, done before taking the lock. Each distinct text is
        embedded once, and not at all when its vector was recycled (``recycle``): a text has one vector whatever call
        it is embedded in, so a reused vector is the one a fresh embedding would give."""
        if not nodes:
            return {}
        digests = [text_digest(n) for n in nodes]
        fresh = {d: n for d, n in zip(digests, nodes) if d not in self.recycled}
        embedded = dict(zip(fresh, self.embedder.embed([embedding_text(n) for n in fresh.values()]))) if fresh else {}
        matrix = np.vstack([embedded[d] if d in embedded else self.recycled[d] for d in digests]).astype(np.float32, copy=False)
        rows: dict[NodeType, list[int]] = defaultdict(list)
        for row, node in enumerate(nodes):
            rows[node.type].append(row)
        return {type_: ([nodes[r].id for r in picked], matrix[picked], [digests[r] for r in picked]) for type_, picked in rows.items()}

    def recycle(self, nodes: Iterable[Node]) -> None:
        """Keeps the vectors of nodes about to be deleted, by the digest of their text, for the rest of the operation:
        a changed document is taken out before its new version goes in, and most of its chunks and names come back
        with the same text."""
        by_type: dict[NodeType, list[Node]] = defaultdict(list)
        for node in nodes:
            if node.type in SEARCHABLE_TYPES and node.id in self.vectors[node.type]:
                by_type[node.type].append(node)
        for type_, group in by_type.items():
            for node, vector in zip(group, self.vectors[type_].get([n.id for n in group])):
                self.recycled[text_digest(node)] = vector

    def end_operation(self) -> None:
        """Forgets the recycled vectors: they belong to nodes no longer stored, and to this operation only."""
        self.recycled.clear()

    def apply(self, vectors: NodeVectors, nodes: Sequence[Node] = (), edges: Sequence[Edge] = (), delete_nodes: Iterable[str] = (),
              delete_edges: Iterable[EdgeKey] = (), delete_vectors: Mapping[NodeType, Iterable[str]] | None = None, touches: bool = True) -> None:
        """One atomic graph write, then the vectors, under the lock. The vectors' dirty marker is made durable
        before anything changes, so a crash anywhere until the operation's closing save is found and healed by
        ``Maintenance.recover`` on the next start. Vectors kept in the store are written by the graph's own
        transaction instead: then the two cannot diverge, and the marker is only for the community layer.

        A write that succeeds is recorded in ``changes`` (``touches=False``: the community layer's own writes)."""
        delete_nodes, delete_edges = list(delete_nodes), list(delete_edges)
        left, neighbours = self._before_delete(delete_nodes) if touches else (set(), set())
        self.vectors.mark_dirty()
        if self.vectors.in_store:
            vector_changes = VectorChanges(vectors, {t: list(ids) for t, ids in (delete_vectors or {}).items()})
            with self.exclusive():
                if nodes or edges or delete_nodes or delete_edges or vector_changes:
                    self.store.write(nodes, edges, delete_nodes=delete_nodes, delete_edges=delete_edges, vectors=vector_changes)
                    if touches:
                        self.changes.record(nodes, edges, delete_edges, left, neighbours)
                    crash_point("apply.graph_written")
            return
        with self.exclusive():
            # the graph first: when its (atomic) write fails, nothing changed and the vectors still match it
            if nodes or edges or delete_nodes or delete_edges:
                self.store.write(nodes, edges, delete_nodes=delete_nodes, delete_edges=delete_edges)
                if touches:
                    self.changes.record(nodes, edges, delete_edges, left, neighbours)
                crash_point("apply.graph_written")
            try:
                self.add_vectors(vectors)
                for type_, ids in (delete_vectors or {}).items():
                    self.vectors[type_].delete(ids)
            except BaseException:
                self.vectors.suspect()  # behind the graph now: keep the dirty marker until a start verifies them
                raise

    def _before_delete(self, delete_nodes: list[str]) -> tuple[set[str], set[str]]:
        """The communities that nodes about to be deleted belong to (they lose a member, so they are re-described),
        and the entities related to them (their strength falls with the edges that go)."""
        if not delete_nodes:
            return set(), set()
        gone = set(delete_nodes)
        left = {community for member, community, _ in self.store.edge_weights(EdgeType.IN_COMMUNITY, delete_nodes) if member in gone}
        related = {end for source, target, _ in self.store.edge_weights(EdgeType.RELATED_TO, delete_nodes) for end in (source, target)}
        return left, related - gone

    def add_vectors(self, vectors: NodeVectors) -> None:
        for type_, (ids, matrix, digests) in vectors.items():
            self.vectors[type_].add(ids, matrix, digests)
