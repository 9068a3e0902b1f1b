"""Keeping the PageRank projection in step with the store, off the query path.

Two ways, one interface (``ProjectionKeeper``):

- ``StoredProjection``: the embedded store keeps its projection itself, on disk, updated by each write in the same
  transaction (graph/sqlite_projection.py); a query only asks it for the current one, which a fresh process
  memory-maps instead of building.
- ``FollowingProjection``: a server store (Neo4j) records which nodes each write touched in a change log keyed by
  store version; this process builds the projection once, then applies only the columns of the nodes that changed
  since (a query replica follows the writer by change, not by rebuild). A log that no longer reaches back far
  enough (the process was away for many writes) means one full build.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

from graphdex.graph.model import EdgeType, NodeType
from graphdex.graph.projection import EMPTY_COLUMN, Column, EdgeRows, GraphProjection, MemoryRowMap, TransitionMatrix, assemble
from graphdex.graph.store import GraphStore

log = logging.getLogger(__name__)

# how long closing waits for an update under way (a whole-graph read over Bolt takes seconds on a large graph)
CLOSE_WAIT_SECONDS = 60.0
#: An in-memory overlay past this share of the base (plus a floor) is folded into a new base.
FOLD_SHARE = 0.25
FOLD_FLOOR = 50_000


class ProjectionKeeper(Protocol):
    def get(self) -> GraphProjection:
        """The projection to walk: the store's current one, or (while an update runs) the last complete one."""
        ...

    def refresh(self) -> None:
        """The store changed: bring the projection up to date (in the background where that takes long)."""
        ...

    def warm(self) -> None:
        """Make the first ``get`` cheap."""
        ...

    def wait(self, timeout: float | None = None) -> None:
        """Until an update under way is done (benchmarks and tests that need the newest projection)."""
        ...

    def close(self) -> None:
        ...


class ProjectedStore(Protocol):
    def projection(self) -> GraphProjection:
        ...


class StoredProjection:
    """The projection an embedded store keeps on disk: nothing to build, nothing to wait for."""

    def __init__(self, store: ProjectedStore) -> None:
        self._store = store

    def get(self) -> GraphProjection:
        return self._store.projection()

    def refresh(self) -> None:
        """The store updates its projection with every write."""

    def warm(self) -> None:
        self._store.projection()

    def wait(self, timeout: float | None = None) -> None:
        """Nothing runs in the background."""

    def close(self) -> None:
        """The store owns the files."""


def build_projection(store: GraphStore) -> tuple[TransitionMatrix, MemoryRowMap, int]:
    """The whole projection read from the store: once per process, or when the change log falls short."""
    version = store.version
    rows = MemoryRowMap()
    for type_ in NodeType:
        rows.assign((node_id, type_) for node_id in sorted(store.node_ids(type_)))
    row_of = rows.rows_of
    edges = EdgeRows()
    chunks_of: dict[str, list[str]] = defaultdict(list)
    for edge in store.iter_edges(contributions=False):
        if edge.type == EdgeType.HAS_CHUNK:
            chunks_of[edge.source].append(edge.target)
        ends = row_of((edge.source, edge.target))
        if edge.source in ends and edge.target in ends:
            edges.add(ends[edge.source], ends[edge.target], edge.type, edge.props.get("weight"))
    for document in store.iter_nodes(NodeType.DOCUMENT):
        entity = row_of([document.props.get("about") or ""])
        for chunk_row in row_of(chunks_of.get(document.id, ())).values():
            edges.about += [(row, chunk_row) for row in entity.values()]
    return TransitionMatrix.of(assemble(len(rows), edges)), rows, version


def changed_columns(store: GraphStore, rows: MemoryRowMap, changed: Iterable[str]) -> dict[int, Column]:
    """The new columns of the ``changed`` nodes, read through the store: their edges, and an entity's about chunks."""
    changed = sorted(set(changed))
    existing = store.get_nodes(changed, contributions=False)
    rows.assign((node_id, node.type) for node_id, node in existing.items())
    gone = [i for i in changed if i not in existing]
    columns = {row: EMPTY_COLUMN for row in rows.rows_of(gone).values()}
    rows.forget(gone)
    incident = store.edges_of_many(existing, contributions=False)
    ends = {e for edges in incident.values() for edge in edges for e in (edge.source, edge.target)}
    unknown = [e for e in ends if e not in rows.rows_of([e])]
    if unknown:  # nodes newer than the change log we read (written since): number them too
        rows.assign((node_id, node.type) for node_id, node in store.get_nodes(unknown, contributions=False).items())
    row_of = rows.rows_of(ends | set(existing))
    edges = EdgeRows()
    seen: set[tuple[str, str, str]] = set()
    for node_edges in incident.values():
        for edge in node_edges:
            if edge.key not in seen and edge.source in row_of and edge.target in row_of:
                seen.add(edge.key)
                edges.add(row_of[edge.source], row_of[edge.target], edge.type, edge.props.get("weight"))
    entities = [i for i, node in existing.items() if node.type == NodeType.ENTITY]
    about = store.documents_about(entities) if entities else {}
    chunk_edges = store.edges_of_many({d for docs in about.values() for d in docs}, [EdgeType.HAS_CHUNK], contributions=False)
    for entity, documents in about.items():
        chunks = [e.target for d in documents for e in chunk_edges.get(d, ()) if e.source == d]
        chunk_rows = rows.rows_of(chunks)
        # a chunk of two documents about the entity counts twice, as in a whole build
        edges.about += [(row_of[entity], chunk_rows[c]) for c in chunks if c in chunk_rows]
    matrix = assemble(len(rows), edges)
    for node_id in existing:
        columns[row_of[node_id]] = Column.of(matrix, row_of[node_id])
    return columns


class FollowingProjection:
    """Serves the last complete projection and follows the store's change log off the query path.

    A query that finds the store newer than its projection asks for an update and goes on with the one it has (one
    write behind at most, for a moment); the update runs on a background thread under ``shared``. Updates are spaced
    at least ``spacing`` times their own duration apart, so during a long ingestion they cost a bounded share of the
    CPU. Only the very first projection is built on demand; ``warm`` builds it ahead of the first query.
    """

    def __init__(self, store: GraphStore, shared: Callable[[], AbstractContextManager[None]] = nullcontext, spacing: float = 4.0) -> None:
        self._store = store
        self._shared = shared
        self._spacing = spacing
        self._current: GraphProjection | None = None
        self._rows = MemoryRowMap()
        self._lock = threading.Lock()  # guards the fields below, and the first build
        self._worker: threading.Thread | None = None
        self._next_allowed = 0.0
        self._closed = False
        self._closing = threading.Event()  # wakes an update that is waiting out its spacing

    def get(self) -> GraphProjection:
        current = self._current
        if current is None:
            with self._lock:
                if self._current is None:
                    self._current = self._update(None)
                return self._current
        if current.version != self._store.version:
            self.refresh()
        return current

    def warm(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        with self._lock:
            if self._closed or (self._worker is not None and self._worker.is_alive()):
                return
            self._worker = threading.Thread(target=self._follow, name="graphdex-projection", daemon=True)
            self._worker.start()

    def wait(self, timeout: float | None = None) -> None:
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def close(self) -> None:
        """Stops following, and waits for an update under way: the store is closed next, and a read still running on
        it would break the driver's connections under it."""
        with self._lock:
            self._closed = True
            worker = self._worker
        self._closing.set()
        if worker is not None:
            worker.join(CLOSE_WAIT_SECONDS)
            if worker.is_alive():
                log.warning("a graph projection update was still running %.0f s after the close", CLOSE_WAIT_SECONDS)

    def _follow(self) -> None:
        while not self._closed:
            pause = self._next_allowed - time.monotonic()
            if pause > 0 and self._closing.wait(pause):
                return
            with self._shared():
                try:
                    current = self._current
                    if current is not None and current.version == self._store.version:
                        return
                    fresh = self._update(current)
                except Exception as error:  # a store outage, or closed: the last projection serves, the next query retries
                    if not self._closed:
                        log.warning("updating the graph projection failed (%s); queries keep the previous one", error)
                    return
            with self._lock:
                self._current = fresh

    def _update(self, current: GraphProjection | None) -> GraphProjection:
        began = time.monotonic()
        changes = self._store.changes_since(current.version) if current is not None else None
        if current is None or changes is None:
            self._rows = MemoryRowMap()
            matrix, self._rows, version = build_projection(self._store)
            how = "built"
        else:
            version = changes.version
            matrix = current.matrix.with_columns(changed_columns(self._store, self._rows, changes.nodes))
            if matrix.overlay_entries > FOLD_SHARE * matrix.base_entries + FOLD_FLOOR:
                matrix = TransitionMatrix(*matrix.folded())
            how = f"updated by {len(changes.nodes)} changed nodes"
        took = time.monotonic() - began
        self._next_allowed = time.monotonic() + self._spacing * took
        log.debug("graph projection %s (version %d) in %.2fs", how, version, took)
        return GraphProjection(matrix, self._rows, version)
