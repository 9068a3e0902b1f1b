"""The embedded store's PageRank projection, kept on disk in step with the graph.

A *base generation* is three ``.npy`` arrays (the CSC transition matrix) under ``projection/<generation>/``, opened by
memory-mapping: a fresh process walks it without building anything, and only the pages a walk reads are loaded. The
columns replaced since (nodes that a write touched) are the *overlay*, rows of ``projection_columns`` written by the
same SQLite transaction as the graph change they follow, so the two can never disagree, whatever the moment of a
crash. When the overlay outgrows a share of the base, a write folds it into a new generation (a linear pass over the
arrays) and switches ``meta.projection_generation`` to it in its transaction; the previous generation's files stay
until the next fold, for readers that opened them.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from graphdex.graph.durable import fsync_directory
from graphdex.graph.model import EdgeType, NodeType
from graphdex.graph.projection import (
    EMPTY_COLUMN,
    Column,
    EdgeRows,
    GraphProjection,
    TransitionMatrix,
    adjacency_arrays,
    edge_weight,
    transition_column,
    weights_column,
)
from graphdex.graph.sqlite_schema import IN_JSON, dump

log = logging.getLogger(__name__)

#: A write folds the overlay into a new base generation when the overlay holds more entries than this share of the
#: base, plus a floor: the folds of a growing index then cost a bounded multiple of its final size.
FOLD_SHARE = 0.25
FOLD_FLOOR = 50_000
_ARRAYS = ("indptr", "indices", "data")
_WEIGHT_ARRAYS = ("weight_indptr", "weight_indices", "weight_data")


class SqliteRowMap:
    """Rows are the nodes table's own (never reused), looked up on demand: no id map is held in memory."""

    def __init__(self, connection: Callable[[], sqlite3.Connection]) -> None:
        self._connection = connection

    def rows_of(self, ids: Iterable[str]) -> dict[str, int]:
        ids = list(ids)
        if not ids:
            return {}
        return dict(self._connection().execute(f"SELECT id, row FROM nodes WHERE id {IN_JSON}", (dump(ids),)))

    def nodes_at(self, rows: Iterable[int]) -> dict[int, tuple[str, NodeType]]:
        rows = [int(r) for r in rows]
        if not rows:
            return {}
        found = self._connection().execute(f"SELECT row, id, type FROM nodes WHERE row {IN_JSON}", (dump(rows),))
        return {row: (node_id, NodeType(type_)) for row, node_id, type_ in found}


def _mapped(path: Path) -> np.ndarray:
    """The array of an .npy file, memory-mapped, as a plain ndarray view of the mapping (which it keeps open):
    indexing a ``numpy.memmap`` goes through a Python-level ``__getitem__``, about 0.6 ms of a graph query at 10x."""
    return np.asarray(np.load(path, mmap_mode="r"))


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set_meta(db: sqlite3.Connection, key: str, value: object) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))


def _column(rows: bytes, probabilities: bytes) -> Column:
    return Column(np.frombuffer(rows, dtype=np.int32), np.frombuffer(probabilities, dtype=np.float32))


def _columns(found: list[tuple[int, bytes, bytes]]) -> dict[int, Column]:
    """Overlay rows as columns viewing two arrays read at once: a fresh process opening an overlay of tens of
    thousands of columns converts two buffers, not two per column."""
    rows = np.frombuffer(b"".join(r for _, r, _ in found), dtype=np.int32)
    probabilities = np.frombuffer(b"".join(p for _, _, p in found), dtype=np.float32)
    ends = np.cumsum([len(r) // 4 for _, r, _ in found]).tolist()
    starts = [0, *ends[:-1]]
    return {col: Column(rows[a:b], probabilities[a:b]) for (col, _, _), a, b in zip(found, starts, ends)}


class ProjectionFiles:
    """Writes the projection with the graph (``update`` in the store's transaction) and serves it to readers."""

    def __init__(self, directory: Path, reader: Callable[[], sqlite3.Connection]) -> None:
        self._dir = directory / "projection"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._reader = reader
        self.rows = SqliteRowMap(reader)
        self._lock = threading.Lock()
        self._current: GraphProjection | None = None
        self._generation: str | None = None

    # the writer's side: inside the store's write transaction ------------------------------------------------------

    def update(self, db: sqlite3.Connection, version: int, touched: set[int], changed_edges: set[tuple[int, str, int]], whole: bool = False) -> None:
        """Replace the columns of the ``touched`` rows (nodes written, deleted, or whose edges or about chunks
        changed) by what the graph holds now, in the transaction ``db`` is in.

        A touched column starts from the edge weights kept for it (``projection_weights``, or the base generation's
        weight arrays) and takes the new weight of each pair joined by an edge in ``changed_edges`` (every edge the
        write put or deleted): the cost follows what the write changed, not the degree of the nodes it touched, so
        an entity named in every batch costs a batch as much at 20x as at 1x. A column with no weights kept (written
        by an earlier graphdex) is read whole from its edges, and so is every column when ``whole`` (a node changed
        type: its edges may then be of more than the one type that joins two node types)."""
        if not touched:
            return
        existing = dict(db.execute(f"SELECT row, type FROM nodes WHERE row {IN_JSON}", (dump(sorted(touched)),)))
        generation = _meta(db, "projection_generation")
        base = self._open_weights(generation)  # None: an earlier graphdex's base, folded below to gain weights
        kept = {} if whole else self._kept_weights(db, existing, generation, base)
        neighbours = {row: dict(zip(column.rows.tolist(), column.probabilities.tolist())) for row, column in kept.items() if column is not None}
        neighbours.update(_weights_from_edges(db, [row for row in existing if row not in neighbours]))
        for (first, second), carried in _pair_weights(db, changed_edges).items():
            for row, other in {(first, second), (second, first)}:
                if row in kept and kept[row] is not None:  # columns read whole above already hold the new weight
                    if carried > 0:
                        neighbours[row][other] = carried
                    else:
                        neighbours[row].pop(other, None)
        about: dict[int, list[int]] = defaultdict(list)
        entities = [r for r, t in existing.items() if t == NodeType.ENTITY]
        if entities:
            for entity, chunk in db.execute(
                    "SELECT entity.row, e.dst FROM nodes entity JOIN nodes d ON d.about = entity.id "
                    f"JOIN edges e ON e.src = d.row AND e.type = ? WHERE entity.row {IN_JSON}", (str(EdgeType.HAS_CHUNK), dump(entities))):
                about[entity].append(chunk)
        columns, weights = [], []
        for row in sorted(touched):
            weight = weights_column(neighbours[row]) if row in existing else EMPTY_COLUMN
            column = transition_column(weight, about.get(row, ())) if row in existing else EMPTY_COLUMN
            columns.append((row, version, column.rows.tobytes(), column.probabilities.tobytes()))
            weights.append((row, weight.rows.tobytes(), weight.probabilities.tobytes()))
        overlay = self._overlay_entries(db) - _entries(db, f"WHERE col {IN_JSON}", dump(sorted(touched)))
        db.executemany("INSERT OR REPLACE INTO projection_columns VALUES (?, ?, ?, ?)", columns)
        db.executemany("INSERT OR REPLACE INTO projection_weights VALUES (?, ?, ?)", weights)
        overlay += sum(len(rows) for _, _, rows, _ in columns) // 4
        _set_meta(db, "projection_overlay_entries", overlay)
        if (overlay > FOLD_SHARE * int(_meta(db, "projection_base_entries") or 0) + FOLD_FLOOR
                or base is None):
            self._fold(db, version)

    @staticmethod
    def _overlay_entries(db: sqlite3.Connection) -> int:
        """Entries in the overlay, kept in ``meta`` by each write (counting them would read every overlay row)."""
        kept = _meta(db, "projection_overlay_entries")
        return int(kept) if kept is not None else _entries(db)

    def _kept_weights(self, db: sqlite3.Connection, rows: Iterable[int], generation: str | None,
                      base: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> dict[int, Column | None]:
        """The edge weights kept for each of ``rows``, None where none are (an earlier graphdex wrote the column)."""
        rows = sorted(rows)
        overlay = {col for (col,) in db.execute(f"SELECT col FROM projection_columns WHERE col {IN_JSON}", (dump(rows),))}
        kept: dict[int, Column | None] = {
            col: _column(weight_rows, weights)
            for col, weight_rows, weights in db.execute(f"SELECT col, rows, weights FROM projection_weights WHERE col {IN_JSON}", (dump(rows),))}
        base_size = len(base[0]) - 1 if base is not None else len(self._open_base(generation)[0]) - 1
        for row in rows:
            if row in kept:
                continue
            if row in overlay or row < base_size and base is None:
                kept[row] = None
            elif row < base_size and base is not None:
                start, end = int(base[0][row]), int(base[0][row + 1])
                kept[row] = Column(np.asarray(base[1][start:end]), np.asarray(base[2][start:end]))
            else:  # a node this write creates (rows are never reused)
                kept[row] = EMPTY_COLUMN
        return kept

    def _fold(self, db: sqlite3.Connection, version: int) -> None:
        """A new base generation with the overlay folded in, switched to by the caller's transaction."""
        previous = _meta(db, "projection_generation")
        overlay = {col: _column(rows, probabilities) for col, rows, probabilities in db.execute("SELECT col, rows, probabilities FROM projection_columns")}
        arrays = dict(zip(_ARRAYS, TransitionMatrix(*self._open_base(previous), overlay).folded()))
        arrays.update(zip(_WEIGHT_ARRAYS, self._folded_weights(db, previous)))
        generation = f"g{version}"
        staging = self._dir / f"{generation}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name, array in arrays.items():
            with open(staging / f"{name}.npy", "wb") as handle:
                np.save(handle, array)
                handle.flush()
                os.fsync(handle.fileno())
        if generation != previous:  # left by a fold whose transaction never committed (its version was given again)
            shutil.rmtree(self._dir / generation, ignore_errors=True)
        os.replace(staging, self._dir / generation)
        fsync_directory(self._dir)
        _set_meta(db, "projection_generation", generation)
        _set_meta(db, "projection_base_entries", len(arrays["indices"]))
        db.execute("DELETE FROM projection_columns")
        db.execute("DELETE FROM projection_weights")
        _set_meta(db, "projection_overlay_entries", 0)
        # the generation before the previous one has no reader left that could still open it
        keep = {generation, previous}
        for path in self._dir.iterdir():
            if path.name not in keep and not path.name.endswith(".partial"):
                shutil.rmtree(path, ignore_errors=True)
        log.debug("projection folded into generation %s (%d entries)", generation, len(arrays["indices"]))

    def _folded_weights(self, db: sqlite3.Connection, generation: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The edge weights of every column, for the new generation: the base's with the kept ones folded in, or,
        when some are missing (an index written by an earlier graphdex), read once from every edge."""
        base = self._open_weights(generation)
        unkept = db.execute("SELECT count(*) FROM projection_columns WHERE col NOT IN (SELECT col FROM projection_weights)").fetchone()[0]
        if base is not None and not unkept:
            overlay = {col: _column(rows, weights) for col, rows, weights in db.execute("SELECT col, rows, weights FROM projection_weights")}
            return TransitionMatrix(*base, overlay).folded()
        log.info("computing the projection's edge weights once from every edge (an index written by an earlier graphdex)")
        edges = EdgeRows()
        for source, target, type_, weight in db.execute("SELECT src, dst, type, weight FROM edges"):
            edges.add(source, target, type_, weight)
        return adjacency_arrays(1 + max(edges.sources + edges.targets, default=-1), edges)

    def _open_weights(self, generation: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The base generation's edge weights (memory-mapped), None for a generation written without them."""
        if generation is None:
            empty = TransitionMatrix.empty()
            return empty.indptr, empty.indices, empty.data
        folder = self._dir / generation
        if not (folder / f"{_WEIGHT_ARRAYS[0]}.npy").exists():
            return None
        indptr, indices, data = (_mapped(folder / f"{name}.npy") for name in _WEIGHT_ARRAYS)
        return indptr, indices, data

    def _open_base(self, generation: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if generation is None:
            empty = TransitionMatrix.empty()
            return empty.indptr, empty.indices, empty.data
        folder = self._dir / generation
        indptr, indices, data = (_mapped(folder / f"{name}.npy") for name in _ARRAYS)
        return indptr, indices, data

    # the readers' side --------------------------------------------------------------------------------------------

    def current(self) -> GraphProjection:
        """The projection of the store's latest committed version: the last one served, plus the columns written
        since (a new generation after a fold is memory-mapped afresh)."""
        db = self._reader()
        with self._lock:
            served = self._current
            if served is not None and served.version == int(_meta(db, "version") or 0):
                return served
            db.execute("BEGIN")
            try:
                version = int(_meta(db, "version") or 0)
                generation = _meta(db, "projection_generation")
                since = served.version if served is not None and generation == self._generation else -1
                changed = _columns(db.execute("SELECT col, rows, probabilities FROM projection_columns WHERE version > ?", (since,)).fetchall())
            finally:
                db.execute("COMMIT")
            if since < 0:
                matrix = TransitionMatrix(*self._open_base(generation), changed)
                self._generation = generation
            else:
                assert served is not None
                matrix = served.matrix.with_columns(changed)
            self._current = GraphProjection(matrix, self.rows, version)
            return self._current


def _entries(db: sqlite3.Connection, where: str = "", *parameters: object) -> int:
    """Entries in the overlay columns ``where`` selects."""
    return int(db.execute(f"SELECT total(length(rows)) FROM projection_columns {where}", parameters).fetchone()[0]) // 4


def _weights_from_edges(db: sqlite3.Connection, rows: list[int]) -> dict[int, dict[int, float]]:
    """The edge weights of ``rows``' columns, read from all their edges."""
    neighbours: dict[int, dict[int, float]] = {row: defaultdict(float) for row in rows}
    if not rows:
        return neighbours
    asked = dump(sorted(rows))
    for source, target, type_, weight in db.execute(
            f"SELECT src, dst, type, weight FROM edges WHERE src {IN_JSON} UNION ALL "
            f"SELECT src, dst, type, weight FROM edges WHERE dst {IN_JSON} AND src NOT {IN_JSON}", (asked, asked, asked)):
        carried = edge_weight(type_, weight)
        if carried > 0:
            if source in neighbours:
                neighbours[source][target] += carried
            if target in neighbours:  # a loop counts twice, as in ``assemble``
                neighbours[target][source] += carried
    return neighbours


def _pair_weights(db: sqlite3.Connection, changed_edges: set[tuple[int, str, int]]) -> dict[tuple[int, int], float]:
    """What the edges between each pair of nodes joined by a changed edge carry now (0 when none is left). Two nodes
    are joined by edges of one type only (``EDGE_ENDS`` gives each pair of node types one edge type), in either
    direction, so the pair's weight is read by primary key, never by scanning a node's edges."""
    pairs = {(min(s, d), max(s, d)): 0.0 for s, _, d in changed_edges}
    keys = {key for s, t, d in changed_edges for key in ((s, t, d), (d, t, s))}
    for source, type_, target, weight in db.execute(
            "SELECT e.src, e.type, e.dst, e.weight FROM json_each(?) k JOIN edges e ON e.src = json_extract(k.value, '$[0]') "
            "AND e.type = json_extract(k.value, '$[1]') AND e.dst = json_extract(k.value, '$[2]')", (dump(sorted(keys)),)):
        pairs[(min(source, target), max(source, target))] += edge_weight(type_, weight) * (2 if source == target else 1)
    return pairs
