"""The graph store interface shared by the embedded (SQLite) and Neo4j implementations.

The store is deliberately dumb: it persists nodes and edges with their summaries and contributions and answers
structural questions. Summarising contributions and deriving properties is the writer's job (``ingest``), so both
stores behave identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from graphdex.common.errors import Unavailable
from graphdex.graph.model import Edge, EdgeKey, EdgeType, Node, NodeType
from graphdex.graph.vectors import VectorChanges


class StoreError(Unavailable):
    """The store is unreachable or its data is unusable; the message says what to do."""

    summary = "the graph store is unavailable"


class StoreUnavailable(StoreError):
    """The store cannot be reached right now (a server down or restarting): the same call may well succeed later,
    so a background writer waits it out instead of failing its work. ``retry_after``: seconds until it is worth
    trying again, when the store knows."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ChangeSet:
    """What the writes after some version touched: the ids of every node whose PageRank column may have changed
    (written, deleted, an end of an edge written or deleted, or the entity a changed document is about), up to
    ``version``."""

    version: int
    nodes: frozenset[str]


class GraphStore(Protocol):
    def get_nodes(self, ids: Iterable[str], contributions: bool = True) -> dict[str, Node]:
        """The nodes that exist among ``ids``, with their summaries; with ``contributions=False`` they may come
        without ``contrib`` (a query needs only the derived props, a merge only the summary, and an entity named in
        thousands of chunks has thousands of contributions)."""
        ...

    def get_edges(self, keys: Iterable[EdgeKey], contributions: bool = True) -> dict[EdgeKey, Edge]:
        """The edges that exist among ``keys``; with ``contributions=False`` they may come without ``contrib`` (a
        community's description reads its core edges' keywords; an edge between two hubs has thousands of them)."""
        ...

    def write(self, nodes: Sequence[Node] = (), edges: Sequence[Edge] = (), delete_nodes: Iterable[str] = (), delete_edges: Iterable[EdgeKey] = (),
              vectors: VectorChanges | None = None) -> None:
        """Upsert and delete in one atomic step: all of it is stored, or none of it.

        An upserted element replaces its props and summary and adds the contributions it carries to those stored
        (a chunk's replacing what that chunk said before); it never drops one. Deleting a node deletes its edges
        (and, in a store that keeps vectors, its vector), and deleting a chunk deletes every contribution keyed by
        it. Deletions are applied before upserts. ``vectors``: only for a store whose vector indexes live in it (``VectorIndexes.in_store``),
        written in the same step; the embedded store refuses them.
        """
        ...

    def supported_by(self, chunk_ids: Iterable[str]) -> tuple[set[str], set[EdgeKey]]:
        """Ids of the nodes and keys of the edges that any of ``chunk_ids`` supports.

        Callers keep the model's invariant (graph.model): a node is adjacent to each chunk that supports it, and an
        edge a chunk supports starts at that chunk or at a node the chunk supports. A server store relies on it to
        answer from the chunks' neighbourhoods instead of scanning the graph.
        """
        ...

    def edges_of(self, node_id: str, types: Iterable[str] | None = None) -> list[Edge]:
        """Edges touching the node, in either direction, optionally limited to some edge types."""
        ...

    def edges_of_many(self, node_ids: Iterable[str], types: Iterable[str] | None = None, contributions: bool = True) -> dict[str, list[Edge]]:
        """``edges_of`` for many nodes in one call (one round trip to a server); nodes without edges are left out.
        With ``contributions=False`` the edges may come without ``contrib`` or ``summary``: queries need only the
        derived props, and parsing a summary for each of a hub's thousands of edges made the allocations that set off
        the interpreter's full garbage collections (a ~50 ms pause in about one query in fifty)."""
        ...

    def documents_about(self, entity_ids: Iterable[str]) -> dict[str, list[str]]:
        """Ids of the documents whose ``about`` property names each entity (the entities without any are left out)."""
        ...

    def node_ids(self, type_: NodeType) -> set[str]:
        ...

    def iter_nodes(self, type_: NodeType) -> Iterator[Node]:
        ...

    def iter_edges(self, types: Iterable[str] | None = None, contributions: bool = True) -> Iterator[Edge]:
        """Every edge (of ``types``). With ``contributions=False`` a store may leave ``contrib`` and ``summary``
        empty: whole-graph readers that need only the derived props (projection, communities) then move far less data
        from a server."""
        ...

    def edge_weights(self, edge_type: EdgeType, node_ids: Iterable[str] | None = None, within: bool = False) -> list[tuple[str, str, int]]:
        """``(source, target, support)`` of each edge of ``edge_type`` with an end among ``node_ids`` (None: every
        such edge; ``within``: both ends among them), each edge once; support as ``total_support`` counts it. Read
        without the edges' other props, so the community layer can weigh thousands of edges without parsing them;
        ``within`` finds the edges among a community's core without returning every edge of its hubs."""
        ...

    def total_support(self, edge_type: EdgeType) -> int:
        """The summed support of every edge of ``edge_type``: each edge's ``support`` prop (the chunks supporting
        it), or the number of its contributions when it has none. The total weight of the entity graph, which the
        community layer needs without reading every edge."""
        ...

    def find_entities(self, text: str, limit: int = 10) -> list[Node]:
        """Entities whose name or alias contains ``text`` (case-insensitive), best (shortest) names first."""
        ...

    def counts(self) -> dict[str, dict[str, int]]:
        """``{"nodes": {type: n}, "edges": {type: n}}``."""
        ...

    @property
    def version(self) -> int:
        """Increases on every write; readers use it to invalidate caches."""
        ...

    def changes_since(self, version: int) -> ChangeSet | None:
        """What changed after ``version``, up to the current one; None when the store's change log no longer
        reaches back that far (a reader that was away for many writes then reads everything again)."""
        ...

    def lock(self) -> AbstractContextManager[None]:
        """Exclusive writer lock (one writer process per store)."""
        ...

    def warm(self) -> None:
        """Start bringing what queries read into memory, in the background (a service that has just opened the
        store does this). A server store, whose cache is the server's, does nothing."""
        ...

    def close(self) -> None:
        ...
