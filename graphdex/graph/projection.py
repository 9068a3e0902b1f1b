"""The PageRank projection of the heterogeneous graph: a column-stochastic transition matrix over every node, and
personalized PageRank over it.

A column holds where a walk standing on one node goes next, and depends on that node alone: its own edges (weighted
by type and by the edge's own weight) and, for an entity, the chunks of the documents about it. So a write changes
exactly the columns of the nodes it touched, and the matrix is kept as a *base* (read-only arrays, memory-mapped from
disk for the embedded store) plus an *overlay* of the columns replaced since; folding the overlay into a new base
is a linear pass over arrays, never a re-read of the graph. ``assemble`` is the one place a column is computed, for
a whole graph and for the few nodes a write touched alike, so both give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import numpy as np

from graphdex.graph.model import EdgeType, NodeType
from graphdex.graph.walk_steps import SparseWalk, add_columns

if TYPE_CHECKING:
    from scipy import sparse

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
#: A walk step sums only the entries it reads while they are fewer than 1/_SPARSE_BELOW of the rows.
_SPARSE_BELOW = 4


def edge_weight(type_: str, weight: float | None) -> float:
    """How much of a walk an edge carries: its type's weight, and its own weight (mention count, supporting chunks)
    with diminishing returns."""
    return DEFAULT_EDGE_WEIGHTS.get(str(type_), 0.0) * math.sqrt(max(1.0, float(weight or 1)))


@dataclass
class EdgeRows:
    """Edges by the rows of their ends, with the weight each carries; and (entity row, chunk row) "about" pairs."""

    sources: list[int] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    about: list[tuple[int, int]] = field(default_factory=list)

    def add(self, source: int, target: int, type_: str, weight: float | None) -> None:
        carried = edge_weight(type_, weight)
        if carried > 0:
            self.sources.append(source)
            self.targets.append(target)
            self.weights.append(carried)


def _adjacency(size: int, edges: EdgeRows) -> sparse.csc_matrix:
    """What the edges carry between each two nodes, both ways (a loop counts twice), as a CSC matrix."""
    from scipy import sparse

    rows = np.asarray(edges.sources + edges.targets, dtype=np.int64)
    cols = np.asarray(edges.targets + edges.sources, dtype=np.int64)
    values = np.asarray(edges.weights + edges.weights, dtype=np.float64)
    return sparse.csc_matrix((values, (rows, cols)), shape=(size, size))


def adjacency_arrays(size: int, edges: EdgeRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every node's ``weights_column`` at once, as CSC arrays (indptr, indices, data)."""
    adjacency = _adjacency(size, edges)
    adjacency.sum_duplicates()
    adjacency.sort_indices()
    return adjacency.indptr.astype(np.int32), adjacency.indices.astype(np.int32), adjacency.data.astype(np.float32)


def assemble(size: int, edges: EdgeRows) -> sparse.csc_matrix:
    """The transition columns of every node whose edges (all of them) and about pairs ``edges`` holds, as a
    ``size`` x ``size`` float32 CSC matrix (other columns come out partial: callers keep only the complete ones)."""
    from scipy import sparse  # on first use: commands that neither write nor walk the graph (stats) skip its import

    adjacency = _adjacency(size, edges)
    out_degree = np.asarray(adjacency.sum(axis=0)).ravel()
    out_degree[out_degree == 0] = 1.0
    transition = adjacency @ sparse.diags(1.0 / out_degree)
    if edges.about and ABOUT_SHARE > 0:
        entities = np.asarray([e for e, _ in edges.about], dtype=np.int64)
        chunks = np.asarray([c for _, c in edges.about], dtype=np.int64)
        keep = np.ones(size)
        keep[entities] = 1.0 - ABOUT_SHARE
        per_entity = np.bincount(entities, minlength=size)
        about = sparse.csc_matrix((ABOUT_SHARE / per_entity[entities], (chunks, entities)), shape=(size, size))
        transition = transition @ sparse.diags(keep) + about
    # single precision: a walk is bound by memory traffic, and float32 values cut it by a third (the top 200 rows of
    # a walk are the same as in float64)
    transition = sparse.csc_matrix(transition, dtype=np.float32)
    transition.sort_indices()
    return transition


@dataclass(frozen=True)
class Column:
    """One node's transition column: the rows a walk moves to, and with what probability (in a weights column,
    ``weights_column``, what its edges carry to each row instead)."""

    rows: np.ndarray  # int32
    probabilities: np.ndarray  # float32

    @classmethod
    def of(cls, matrix: sparse.csc_matrix, column: int) -> Column:
        start, end = matrix.indptr[column], matrix.indptr[column + 1]
        return cls(np.asarray(matrix.indices[start:end], dtype=np.int32), np.asarray(matrix.data[start:end], dtype=np.float32))


EMPTY_COLUMN = Column(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32))


def weights_column(neighbours: Mapping[int, float]) -> Column:
    """What a node's edges carry to each neighbour (``edge_weight`` summed over the edges between the two), as a
    column in row order, in single precision. The embedded store keeps it beside the transition column, so a write
    that adds one edge to a node of ten thousand edges changes one entry, not a read of all its edges."""
    rows = np.asarray(sorted(r for r, w in neighbours.items() if w > 0), dtype=np.int32)
    return Column(rows, np.asarray([neighbours[int(r)] for r in rows], dtype=np.float32))


def transition_column(weights: Column, about: Sequence[int]) -> Column:
    """The transition column of a node with these edge ``weights`` (``weights_column``) and, for an entity, the
    chunks of the documents about it: what ``assemble`` gives that column (within single precision), computed
    from the node's own entries alone."""
    carried = weights.probabilities.astype(np.float64)
    total = carried.sum()
    probabilities = carried / (total if total > 0 else 1.0)
    if not about or ABOUT_SHARE <= 0:  # most columns: the weights' rows are already sorted and distinct
        return Column(weights.rows, probabilities.astype(np.float32))
    about_rows = np.asarray(about, dtype=np.int64)
    rows = np.concatenate([weights.rows.astype(np.int64), about_rows])
    probabilities = np.concatenate([probabilities * (1.0 - ABOUT_SHARE), np.full(len(about_rows), ABOUT_SHARE / len(about_rows))])
    unique, position = np.unique(rows, return_inverse=True)
    summed = np.bincount(position, weights=probabilities, minlength=len(unique))
    return Column(unique.astype(np.int32), summed.astype(np.float32))


class TransitionMatrix:
    """Base columns (CSC arrays, which may be memory-mapped files) with some columns replaced by an overlay.

    Immutable: ``with_columns`` returns a new matrix sharing the base, so a query holding one never sees it change."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, overlay: Mapping[int, Column] | None = None) -> None:
        self.indptr, self.indices, self.data = indptr, indices, data
        self.base_size = len(indptr) - 1
        self.overlay: dict[int, Column] = dict(overlay or {})
        columns = np.fromiter(sorted(self.overlay), dtype=np.int64, count=len(self.overlay))
        parts = [self.overlay[int(c)] for c in columns]
        # the same integer type as the rows: the compiled kernels of ``add_columns`` and ``SparseWalk`` take one for both
        self._overlay_indptr = np.concatenate([[0], np.cumsum([len(p.rows) for p in parts], dtype=np.int64)]).astype(np.int32)
        self._overlay_indices = np.concatenate([p.rows for p in parts]) if parts else np.zeros(0, dtype=np.int32)
        self._overlay_data = np.concatenate([p.probabilities for p in parts]) if parts else np.zeros(0, dtype=np.float32)
        # one pass over the concatenated rows, not one per column: a fresh process may hold tens of thousands
        reach = [self.base_size, int(columns[-1]) + 1 if len(columns) else 0]
        reach += [int(self._overlay_indices.max()) + 1] if len(self._overlay_indices) else []
        self.size = max(reach)
        self._replaced = np.zeros(self.size, dtype=bool)
        self._replaced[columns] = True
        self._overlay_position = np.full(self.size, -1, dtype=np.int64)
        self._overlay_position[columns] = np.arange(len(columns))

    @cached_property
    def _base(self) -> sparse.csc_matrix:
        """The base as a SciPy matrix, for a walk step that reads most columns. Made (and SciPy imported, 0.2 s of
        Python) on first use: a walk from a few seeds reads its columns directly, so a fresh `graphdex query` process
        never needs it."""
        from scipy import sparse

        return sparse.csc_matrix((self.data, self.indices, self.indptr), shape=(self.base_size, self.base_size), copy=False)

    @classmethod
    def empty(cls) -> TransitionMatrix:
        return cls(np.zeros(1, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32))

    @classmethod
    def of(cls, matrix: sparse.csc_matrix) -> TransitionMatrix:
        return cls(matrix.indptr.astype(np.int32), matrix.indices.astype(np.int32), matrix.data.astype(np.float32))

    @property
    def overlay_entries(self) -> int:
        return len(self._overlay_indices)

    @property
    def base_entries(self) -> int:
        return len(self.indices)

    def with_columns(self, columns: Mapping[int, Column]) -> TransitionMatrix:
        return TransitionMatrix(self.indptr, self.indices, self.data, {**self.overlay, **columns})

    def column(self, column: int) -> Column:
        if column in self.overlay:
            return self.overlay[column]
        if column >= self.base_size:
            return EMPTY_COLUMN
        start, end = self.indptr[column], self.indptr[column + 1]
        return Column(np.asarray(self.indices[start:end]), np.asarray(self.data[start:end]))

    def spread(self, scores: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """``transition @ scores``; with ``columns``, ``scores`` is taken to be zero outside them, and only those
        columns are read (a truncated walk reaching a small part of a large graph)."""
        n = self.size
        if columns is None or len(columns) * _DENSE_BELOW > n:
            base_scores = np.where(self._replaced[: self.base_size], 0.0, scores[: self.base_size]).astype(np.float32)
            out = np.zeros(n, dtype=np.float32)
            out[: self.base_size] = self._base @ base_scores
            replaced = np.flatnonzero(self._replaced)
            sums = np.zeros(n, dtype=np.float64)
            add_columns(self._overlay_indptr, self._overlay_indices, self._overlay_data, self._overlay_position[replaced], scores[replaced], sums)
            return out + sums.astype(np.float32)
        sums = np.zeros(n, dtype=np.float64)
        self.accumulate(columns, scores[columns], sums)
        return sums.astype(np.float32)

    def entry_count(self, columns: np.ndarray) -> int:
        """How many entries ``columns`` hold: what a step reading them costs."""
        in_overlay = self._replaced[columns]
        base = columns[~in_overlay & (columns < self.base_size)]
        overlay = self._overlay_position[columns[in_overlay]]
        return int((np.asarray(self.indptr[base + 1], dtype=np.int64) - self.indptr[base]).sum()
                   + (self._overlay_indptr[overlay + 1] - self._overlay_indptr[overlay]).sum())

    def accumulate(self, columns: np.ndarray, values: np.ndarray, sums: np.ndarray) -> None:
        """``sums += transition[:, columns] @ values`` into float64 ``sums``: base columns first, then overlay
        columns, each column's entries in row order, so the same columns always give the same sums to the bit."""
        in_overlay = self._replaced[columns]
        in_base = ~in_overlay & (columns < self.base_size)
        add_columns(self.indptr, self.indices, self.data, columns[in_base], values[in_base], sums)
        add_columns(self._overlay_indptr, self._overlay_indices, self._overlay_data, self._overlay_position[columns[in_overlay]],
                    values[in_overlay], sums)

    def spread_into(self, columns: np.ndarray, values: np.ndarray, walk: SparseWalk) -> None:
        """What ``accumulate`` does, into a sparse walk's sums, in the same order (so to the same bit), noting the
        rows reached."""
        in_overlay = self._replaced[columns]
        in_base = ~in_overlay & (columns < self.base_size)
        walk.spread(self.indptr, self.indices, self.data, columns[in_base], values[in_base])
        walk.spread(self._overlay_indptr, self._overlay_indices, self._overlay_data, self._overlay_position[columns[in_overlay]], values[in_overlay])

    def folded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The base with the overlay folded in, as new CSC arrays (indptr, indices, data) over ``size`` columns."""
        n = self.size
        counts = np.zeros(n, dtype=np.int64)
        counts[: self.base_size] = np.diff(np.asarray(self.indptr, dtype=np.int64))
        for column, part in self.overlay.items():
            counts[column] = len(part.rows)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        indices = np.empty(indptr[-1], dtype=np.int32)
        data = np.empty(indptr[-1], dtype=np.float32)
        kept = np.flatnonzero(~self._replaced[: self.base_size])
        source = _positions(np.asarray(self.indptr, dtype=np.int64), kept)
        target = _positions(indptr, kept)
        indices[target] = self.indices[source]
        data[target] = self.data[source]
        for column, part in self.overlay.items():
            indices[indptr[column] : indptr[column + 1]] = part.rows
            data[indptr[column] : indptr[column + 1]] = part.probabilities
        if indptr[-1] >= 2**31:
            raise OverflowError("the projection outgrew 32-bit indices")
        return indptr.astype(np.int32), indices, data


def _positions(indptr: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Positions in the CSC arrays of every entry of ``columns``, column after column. Only the asked columns'
    pointers are read and widened (a walk step asks for a few of hundreds of thousands)."""
    starts = np.asarray(indptr[columns], dtype=np.int64)
    counts = np.asarray(indptr[columns + 1], dtype=np.int64) - starts
    ends = np.cumsum(counts)
    return np.arange(ends[-1] if len(ends) else 0, dtype=np.int64) + np.repeat(starts - (ends - counts), counts)


class RowMap(Protocol):
    """Which node each row of a projection stands for. A row, once given to a node, is never given to another."""

    def rows_of(self, ids: Iterable[str]) -> dict[str, int]:
        ...

    def nodes_at(self, rows: Sequence[int]) -> dict[int, tuple[str, NodeType]]:
        """Id and type of the nodes at ``rows`` that still exist."""
        ...


@dataclass(frozen=True)
class GraphProjection:
    matrix: TransitionMatrix
    rows: RowMap
    version: int

    @property
    def size(self) -> int:
        return self.matrix.size

    def _sparse_step_pays(self, active: np.ndarray) -> bool:
        """Whether a step from ``active`` costs less summing its entries than a dense pass over every row."""
        n = self.size
        return len(active) * _DENSE_BELOW <= n and self.matrix.entry_count(active) * _SPARSE_BELOW <= n

    def _restart_weights(self, seeds: Mapping[str, float]) -> dict[int, float]:
        """The seeds the projection holds, by row, with their (positive) weights."""
        n = self.size
        return {row: seeds[node_id] for node_id, row in self.rows.rows_of(seeds).items() if row < n and seeds[node_id] > 0}

    def pagerank_with_more_seeds(self, scores: np.ndarray, seeds: Mapping[str, float], more: Mapping[str, float], alpha: float = 0.5,
                                 iterations: int = 15, tolerance: float = 0.0) -> np.ndarray:
        """The walk restarting at ``seeds`` and ``more`` together, given ``scores``, the walk from ``seeds`` alone.

        A walk's scores are linear in its restart distribution, so the joint walk is the two walks mixed by their
        shares of the restart weight, and only the walk from ``more`` is run: a second walk from every seed again
        cost as much as the first. That walk's ``tolerance`` is divided by its share, so that a node stops passing
        its score on where its part of the joint score would fall under ``tolerance``; with ``tolerance`` 0 the mix
        is the joint walk up to float rounding."""
        first = sum(self._restart_weights(seeds).values())
        added = sum(self._restart_weights(more).values())
        if added == 0:
            return scores
        share = added / (first + added)
        mixed = self.personalized_pagerank(more, alpha, iterations, min(tolerance / share, 1.0))
        mixed *= share
        mixed += (1 - share) * scores
        return mixed

    def personalized_pagerank(self, seeds: Mapping[str, float], alpha: float = 0.5, iterations: int = 15, tolerance: float = 0.0) -> np.ndarray:
        """Scores per row for a random walk that restarts at ``seeds`` (weights need not sum to 1) with prob. ``alpha``.

        ``tolerance``: a node whose score is below it does not pass its score on in the next step. A walk from a few
        seeds then costs in proportion to the neighbourhood it reaches, not to every edge of the graph. The scores
        withheld in one step are at most ``tolerance`` per node; 0 gives the exact walk.

        While a step reads few entries (under a quarter of the rows), it is sparse (``SparseWalk``): its entries
        are summed into a scratch array and only the rows passing a score on are read back, instead of passes over
        every row of the graph, which grow with the index, not with the walk. The sums are the dense step's
        (``TransitionMatrix.spread``), in the same order, so the scores are the same bit for bit."""
        n = self.size
        weight_at = self._restart_weights(seeds)
        seed_rows = np.asarray(sorted(weight_at), dtype=np.int64)
        restart = np.asarray([weight_at[row] for row in seed_rows.tolist()], dtype=np.float32)  # at seed_rows
        total = restart.sum()
        if total == 0:
            return np.zeros(n, dtype=np.float32)
        restart /= total
        restarting = alpha * restart
        scores = np.zeros(n, dtype=np.float32)
        scores[seed_rows] = restart
        done = 0
        if tolerance > 0:
            keep = restart >= tolerance
            active, values = seed_rows[keep], restart[keep]
            walk = SparseWalk(n, seed_rows, restarting, alpha, tolerance)
            while done < iterations and self._sparse_step_pays(active):
                self.matrix.spread_into(active, values, walk)
                done += 1
                if done < iterations:
                    active, values = walk.passing_on()
                    if self._sparse_step_pays(active):
                        walk.clear()
                        continue
                scores = walk.every_row()  # the walk ends here, or goes on with dense steps
                break
            walk.release()
        for _ in range(iterations - done):
            spread_rows = np.flatnonzero(scores >= tolerance) if tolerance > 0 else None
            scores = self.matrix.spread(scores, spread_rows)  # a new array: scaled and shifted in place
            scores *= 1 - alpha
            scores[seed_rows] += restarting
        return scores


class MemoryRowMap:
    """Rows handed out in memory, in order of first sight: the projection of a store that numbers no rows itself."""

    def __init__(self) -> None:
        self._row_of: dict[str, int] = {}
        self._ids: list[str] = []
        self._types: list[NodeType] = []
        self._gone: set[int] = set()

    def assign(self, ids_with_types: Iterable[tuple[str, NodeType]]) -> None:
        for node_id, type_ in ids_with_types:
            row = self._row_of.get(node_id)
            if row is None:
                self._row_of[node_id] = len(self._ids)
                self._ids.append(node_id)
                self._types.append(NodeType(type_))
            else:
                self._gone.discard(row)

    def forget(self, ids: Iterable[str]) -> None:
        """Nodes that no longer exist: their rows stay (other columns may still point there until replaced)."""
        self._gone.update(self._row_of[i] for i in ids if i in self._row_of)

    def __len__(self) -> int:
        return len(self._ids)

    def rows_of(self, ids: Iterable[str]) -> dict[str, int]:
        return {i: self._row_of[i] for i in ids if i in self._row_of and self._row_of[i] not in self._gone}

    def nodes_at(self, rows: Sequence[int]) -> dict[int, tuple[str, NodeType]]:
        return {int(r): (self._ids[r], self._types[r]) for r in rows if 0 <= r < len(self._ids) and r not in self._gone}
