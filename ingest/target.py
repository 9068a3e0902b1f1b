"""The pair a writer keeps in step, the graph store and its vector indexes, with the embedder and lock they share.

Both the ingest path and maintenance (delete, repair, communities) write through it, so "embed outside the lock,
then add vectors and write the graph inside it" is written once.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from graphdex.common.embedder import Embedder
from graphdex.graph.model import Edge, EdgeKey, Node, NodeType
from graphdex.graph.store import GraphStore
from graphdex.graph.vector_index import VectorIndexSet
from graphdex.ingest.derive import embedding_text

#: New vectors by node type: (node ids, one row per id).
NodeVectors = dict[NodeType, tuple[list[str], np.ndarray]]


@dataclass(frozen=True, kw_only=True)
class IndexTarget:
    store: GraphStore
    vectors: VectorIndexSet
    embedder: Embedder
    #: Held around each mutation (the write side of the service's readers-writer lock); embedding runs outside it.
    exclusive: Callable[[], AbstractContextManager[None]] = field(default=nullcontext)

    def embed(self, nodes: Sequence[Node]) -> NodeVectors:
        """The nodes' vectors by type: the slow part of a write, done before taking the lock."""
        if not nodes:
            return {}
        matrix = self.embedder.embed([embedding_text(n) for n in nodes])
        rows: dict[NodeType, list[int]] = defaultdict(list)
        for row, node in enumerate(nodes):
            rows[node.type].append(row)
        return {type_: ([nodes[r].id for r in picked], matrix[picked]) for type_, picked in rows.items()}

    def apply(self, vectors: NodeVectors, nodes: Sequence[Node] = (), edges: Sequence[Edge] = (), delete_nodes: Iterable[str] = (),
              delete_edges: Iterable[EdgeKey] = (), delete_vectors: Mapping[NodeType, Iterable[str]] | None = None) -> None:
        """Vectors first, then one atomic graph write, under the lock: a crash between the two leaves vectors the
        graph lacks, which ``Maintenance.repair`` removes on the next start."""
        with self.exclusive():
            self.add_vectors(vectors)
            if nodes or edges or delete_nodes or delete_edges:
                self.store.write(nodes, edges, delete_nodes=delete_nodes, delete_edges=delete_edges)
            for type_, ids in (delete_vectors or {}).items():
                self.vectors[type_].delete(ids)

    def add_vectors(self, vectors: NodeVectors) -> None:
        for type_, (ids, matrix) in vectors.items():
            self.vectors[type_].add(ids, matrix)
