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
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from graphdex.graph.durable import fsync_directory
from graphdex.graph.model import EdgeType, NodeType
from graphdex.graph.projection import EMPTY_COLUMN, Column, EdgeRows, GraphProjection, TransitionMatrix, assemble
from graphdex.graph.sqlite_schema import IN_JSON, dump

log = logging.getLogger(__name__)

#: A write folds the overlay into a new base generation when the overlay holds more entries than this share of the
#: base, plus a floor: the folds of a growing index then cost a bounded multiple of its final size.
FOLD_SHARE = 0.25
FOLD_FLOOR = 50_000
_ARRAYS = ("indptr", "indices", "data")


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


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set_meta(db: sqlite3.Connection, key: str, value: object) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))


def _column(rows: bytes, probabilities: bytes) -> Column:
    return Column(np.frombuffer(rows, dtype=np.int32), np.frombuffer(probabilities, dtype=np.float32))


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

    def update(self, db: sqlite3.Connection, version: int, touched: set[int]) -> None:
        """Replace the columns of the ``touched`` rows (nodes written, deleted, or whose edges or about chunks
        changed) by what the graph holds now, in the transaction ``db`` is in."""
        if not touched:
            return
        rows = dump(sorted(touched))
        existing = dict(db.execute(f"SELECT row, type FROM nodes WHERE row {IN_JSON}", (rows,)))
        edges = EdgeRows()
        for source, target, type_, weight in db.execute(
                f"SELECT src, dst, type, weight FROM edges WHERE src {IN_JSON} UNION ALL "
                f"SELECT src, dst, type, weight FROM edges WHERE dst {IN_JSON} AND src NOT {IN_JSON}", (rows, rows, rows)):
            edges.add(source, target, type_, weight)
        entities = [r for r, t in existing.items() if t == NodeType.ENTITY]
        if entities:
            edges.about = list(db.execute(
                "SELECT entity.row, e.dst FROM nodes entity JOIN nodes d ON d.about = entity.id "
                f"JOIN edges e ON e.src = d.row AND e.type = ? WHERE entity.row {IN_JSON}", (str(EdgeType.HAS_CHUNK), dump(entities))))
        size = 1 + max([*touched, *edges.sources, *edges.targets, *(chunk for _, chunk in edges.about)])
        matrix = assemble(size, edges)
        written = []
        for row in sorted(touched):
            column = Column.of(matrix, row) if row in existing else EMPTY_COLUMN
            written.append((row, version, column.rows.astype(np.int32).tobytes(), column.probabilities.astype(np.float32).tobytes()))
        db.executemany("INSERT OR REPLACE INTO projection_columns VALUES (?, ?, ?, ?)", written)
        overlay = db.execute("SELECT total(length(rows)) FROM projection_columns").fetchone()[0] // 4
        if overlay > FOLD_SHARE * int(_meta(db, "projection_base_entries") or 0) + FOLD_FLOOR:
            self._fold(db, version)

    def _fold(self, db: sqlite3.Connection, version: int) -> None:
        """A new base generation with the overlay folded in, switched to by the caller's transaction."""
        base = self._open_base(_meta(db, "projection_generation"))
        overlay = {col: _column(rows, probabilities) for col, rows, probabilities in db.execute("SELECT col, rows, probabilities FROM projection_columns")}
        indptr, indices, data = TransitionMatrix(*base, overlay).folded()
        generation = f"g{version}"
        staging = self._dir / f"{generation}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name, array in zip(_ARRAYS, (indptr, indices, data)):
            with open(staging / f"{name}.npy", "wb") as handle:
                np.save(handle, array)
                handle.flush()
                os.fsync(handle.fileno())
        previous = _meta(db, "projection_generation")
        if generation != previous:  # left by a fold whose transaction never committed (its version was given again)
            shutil.rmtree(self._dir / generation, ignore_errors=True)
        os.replace(staging, self._dir / generation)
        fsync_directory(self._dir)
        _set_meta(db, "projection_generation", generation)
        _set_meta(db, "projection_base_entries", len(indices))
        db.execute("DELETE FROM projection_columns")
        # the generation before the previous one has no reader left that could still open it
        keep = {generation, previous}
        for path in self._dir.iterdir():
            if path.name not in keep and not path.name.endswith(".partial"):
                shutil.rmtree(path, ignore_errors=True)
        log.debug("projection folded into generation %s (%d entries)", generation, len(indices))

    def _open_base(self, generation: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if generation is None:
            empty = TransitionMatrix.empty()
            return empty.indptr, empty.indices, empty.data
        folder = self._dir / generation
        return tuple(np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS)  # type: ignore[return-value]

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
                changed = {col: _column(rows, probabilities) for col, rows, probabilities in
                           db.execute("SELECT col, rows, probabilities FROM projection_columns WHERE version > ?", (since,))}
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
