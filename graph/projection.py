"""A sparse-matrix projection of the whole heterogeneous graph, and personalized PageRank over it.

Building the projection costs one pass over the edges; after that a PageRank query is a handful of sparse
matrix-vector products (milliseconds), where networkx's pagerank would rebuild its own structures on every call.
``ProjectionKeeper`` rebuilds it in the background after the graph changes, so no query pays for a rebuild.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from scipy import sparse

from graphdex.graph.model import EdgeType, NodeType
from graphdex.graph.store import GraphStore

log = logging.getLogger(__name__)

#: How strongly each edge type carries PageRank mass (both directions).
DEFAULT_EDGE_WEIGHTS: dict[str, float] = {
    EdgeType.HAS_CHUNK: 0.5,
    EdgeType.MENTIONS: 1.0,
    EdgeType.EVIDENCES: 1.0,
    EdgeType.RELATED_TO: 1.0,
    EdgeType.CONNECTS: 1.0,
    EdgeType.IN_COMMUNITY: 0.3,
}

#: Share of an entity's outgoing walk that goes to the chunks of the document about it (the document whose title is
#: the entity's name), whatever its degree: a much-mentioned person is reached from many passages, but the walk
#: that arrives at them should land mostly on their own passage, not spread over every passage naming them.
ABOUT_SHARE = 0.5

#: A truncated walk step reads only the columns of the nodes it reached; past one node in this many, reading every
#: column in one sparse product is faster than gathering them.
_DENSE_BELOW = 8


@dataclass
class GraphProjection:
    node_ids: list[str]
    index: dict[str, int]
    node_types: np.ndarray  # NodeType value per row, as an object array of strings
    transition: sparse.csc_matrix  # column-stochastic: transition[i, j] = P(j -> i), float32; column j = where j leads
    version: int

    @classmethod
    def build(cls, store: GraphStore, edge_weights: Mapping[str, float] = DEFAULT_EDGE_WEIGHTS) -> "GraphProjection":
        version = store.version
        node_ids: list[str] = []
        types: list[str] = []
        for type_ in NodeType:
            ids = sorted(store.node_ids(type_))
            node_ids += ids
            types += [str(type_)] * len(ids)
        index = {node_id: i for i, node_id in enumerate(node_ids)}
        rows: list[int] = []
        cols: list[int] = []
        weights: list[float] = []
        chunks_of: dict[str, list[str]] = {}
        for edge in store.iter_edges(contributions=False):
            if edge.type == EdgeType.HAS_CHUNK:
                chunks_of.setdefault(edge.source, []).append(edge.target)
            # an edge's own weight (mention count, supporting chunks) counts with diminishing returns
            weight = edge_weights.get(str(edge.type), 0.0) * math.sqrt(max(1.0, float(edge.props.get("weight", 1) or 1)))
            if weight <= 0 or edge.source not in index or edge.target not in index:
                continue
            a, b = index[edge.source], index[edge.target]
            rows += (a, b)
            cols += (b, a)
            weights += (weight, weight)
        n = len(node_ids)
        adjacency = sparse.csr_matrix((np.asarray(weights, dtype=np.float64), (rows, cols)), shape=(n, n))
        out_degree = np.asarray(adjacency.sum(axis=0)).ravel()
        out_degree[out_degree == 0] = 1.0
        transition = adjacency @ sparse.diags(1.0 / out_degree)
        about = _about_edges(store, index, chunks_of)
        if about and ABOUT_SHARE > 0:
            entities = np.fromiter({e for e, _ in about}, dtype=np.int64)
            keep = np.ones(n)
            keep[entities] = 1.0 - ABOUT_SHARE
            per_entity = np.bincount([e for e, _ in about], minlength=n)
            a_rows = [c for _, c in about]
            a_cols = [e for e, _ in about]
            a_vals = [ABOUT_SHARE / per_entity[e] for e, _ in about]
            transition = transition @ sparse.diags(keep) + sparse.csr_matrix((a_vals, (a_rows, a_cols)), shape=(n, n))
        # single precision: a walk is bound by memory traffic, and float32 values cut it by a third (the top 200 rows
        # of a walk are the same as in float64). Columns, because a walk spreads the score of each node it reached
        # along that node's column
        transition = transition.tocsc().astype(np.float32)
        return cls(node_ids, index, np.asarray(types, dtype=object), transition, version)

    def personalized_pagerank(self, seeds: Mapping[str, float], alpha: float = 0.5, iterations: int = 15, tolerance: float = 0.0) -> np.ndarray:
        """Scores per row for a random walk that restarts at ``seeds`` (weights need not sum to 1) with prob. ``alpha``.

        ``tolerance``: a node whose score is below it does not pass its score on in the next step. A walk from a few
        seeds then costs in proportion to the neighbourhood it reaches, not to every edge of the graph (the dense
        product grew linearly with the index: 10x the corpus, 10x the time per query). The scores withheld in one
        step are at most ``tolerance`` per node; 0 gives the exact walk."""
        n = len(self.node_ids)
        restart = np.zeros(n, dtype=np.float32)
        for node_id, weight in seeds.items():
            row = self.index.get(node_id)
            if row is not None and weight > 0:
                restart[row] += weight
        total = restart.sum()
        if total == 0:
            return restart
        restart /= total
        scores = restart.copy()
        for _ in range(iterations):
            active = np.flatnonzero(scores >= tolerance) if tolerance > 0 else None
            if active is None or len(active) * _DENSE_BELOW > n:
                spread = self.transition @ scores
            else:
                spread = self._spread(active, scores[active])
            scores = alpha * restart + (1 - alpha) * spread
        return scores

    def _spread(self, columns: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``transition @ v`` for a ``v`` that is zero outside ``columns``: only those columns' entries are read."""
        matrix = self.transition
        starts = matrix.indptr[columns]
        counts = matrix.indptr[columns + 1] - starts
        ends = np.cumsum(counts)
        positions = np.arange(ends[-1] if len(ends) else 0) + np.repeat(starts - (ends - counts), counts)
        weights = matrix.data[positions] * np.repeat(values, counts)
        return np.bincount(matrix.indices[positions], weights=weights, minlength=len(self.node_ids)).astype(np.float32)


def _about_edges(store: GraphStore, index: Mapping[str, int], chunks_of: Mapping[str, list[str]]) -> list[tuple[int, int]]:
    """(entity row, chunk row) for each chunk of a document that is about an entity (its ``about`` property, set
    by ingest when the document's title names an entity its text mentions)."""
    pairs: list[tuple[int, int]] = []
    for document in store.iter_nodes(NodeType.DOCUMENT):
        entity = index.get(document.props.get("about") or "")
        if entity is not None:
            pairs += [(entity, index[c]) for c in chunks_of.get(document.id, ()) if c in index]
    return pairs


# how long closing waits for a rebuild under way (a whole-graph read over Bolt takes seconds on a large graph)
CLOSE_WAIT_SECONDS = 60.0


class ProjectionKeeper:
    """Serves the last complete projection and rebuilds it off the query path when the store has changed.

    A query that finds the store newer than its projection asks for a rebuild and goes on with the one it has (one
    write behind at most, for a moment); the rebuild runs on a background thread under ``shared`` (the read side of
    the service's lock, so it sees no half-written batch). Rebuilds are spaced at least ``spacing`` times their own
    duration apart, so during a long ingestion they cost a bounded share of the CPU. Only the very first projection
    is built on demand; ``warm`` builds it ahead of the first query.
    """

    def __init__(self, store: GraphStore, shared: Callable[[], AbstractContextManager[None]] = nullcontext, spacing: float = 4.0) -> None:
        self._store = store
        self._shared = shared
        self._spacing = spacing
        self._current: GraphProjection | None = None
        self._lock = threading.Lock()  # guards the fields below, and the first build
        self._worker: threading.Thread | None = None
        self._next_allowed = 0.0
        self._closed = False
        self._closing = threading.Event()  # wakes a rebuild that is waiting out its spacing

    def get(self) -> GraphProjection:
        """The last complete projection; the caller must hold ``shared``, as queries do."""
        current = self._current
        if current is None:
            with self._lock:
                if self._current is None:
                    self._current = self._build()
                return self._current
        if current.version != self._store.version:
            self.refresh()
        return current

    def warm(self) -> None:
        """Build the first projection now, in the background, so the first query does not wait for it."""
        self.refresh()

    def refresh(self) -> None:
        with self._lock:
            if self._closed or (self._worker is not None and self._worker.is_alive()):
                return
            self._worker = threading.Thread(target=self._refresh_loop, name="graphdex-projection", daemon=True)
            self._worker.start()

    def wait(self, timeout: float | None = None) -> None:
        """Until the rebuild under way (if any) is done: for benchmarks and tests that need the newest projection."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def close(self) -> None:
        """Stops rebuilding, and waits for a rebuild under way: the store is closed next, and a read still running on
        it would break the driver's connections under it."""
        with self._lock:
            self._closed = True
            worker = self._worker
        self._closing.set()
        if worker is not None:
            worker.join(CLOSE_WAIT_SECONDS)
            if worker.is_alive():
                log.warning("a graph projection rebuild was still running %.0f s after the close", CLOSE_WAIT_SECONDS)

    def _refresh_loop(self) -> None:
        while not self._closed:
            pause = self._next_allowed - time.monotonic()
            if pause > 0 and self._closing.wait(pause):
                return
            with self._shared():
                try:
                    current = self._current
                    if current is not None and current.version == self._store.version:
                        return
                    fresh = self._build()
                except Exception as error:  # a store outage, or closed: the last projection serves, the next query retries
                    if not self._closed:
                        log.warning("rebuilding the graph projection failed (%s); queries keep the previous one", error)
                    return
            with self._lock:
                self._current = fresh

    def _build(self) -> GraphProjection:
        began = time.monotonic()
        projection = GraphProjection.build(self._store)
        took = time.monotonic() - began
        self._next_allowed = time.monotonic() + self._spacing * took
        log.debug("built the graph projection (version %d) in %.2fs", projection.version, took)
        return projection
