"""The sparse steps of a personalized-PageRank walk (graph/projection.py): adding a few columns of the transition
matrix into sums, and the scratch state of a walk whose inner loops are compiled (graph/_walk.c)."""

from __future__ import annotations

import threading

import numpy as np

from graphdex.graph import _walk


def add_columns(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, columns: np.ndarray, values: np.ndarray, sums: np.ndarray) -> None:
    """``sums += matrix[:, columns] @ values`` for CSC arrays whose ``indptr`` and ``indices`` share one integer type.

    A walk step reads tens of thousands of entries; done with numpy it took a dozen passes over them (positions,
    gathers, products, a scatter-add), about 1.8 ms a step at 10x. SciPy's compiled sparse kernels do it in two: copy
    the columns out (``csr_row_index``: a CSC matrix's columns are a CSR matrix's rows), then a sparse matrix-vector
    product that adds into ``sums`` column after column. They are private to SciPy; tests cover the results."""
    if not len(columns):
        return
    from scipy.sparse import _sparsetools

    columns = columns.astype(indptr.dtype, copy=False)
    counts = indptr[columns + 1] - indptr[columns]
    pointers = np.zeros(len(columns) + 1, dtype=indptr.dtype)
    np.cumsum(counts, out=pointers[1:])
    rows = np.empty(pointers[-1], dtype=indices.dtype)
    probabilities = np.empty(pointers[-1], dtype=data.dtype)
    _sparsetools.csr_row_index(len(columns), columns, indptr, indices, data, rows, probabilities)
    _sparsetools.csc_matvec(len(sums), len(columns), pointers, rows, probabilities.astype(np.float64), values.astype(np.float64), sums)


class _ScratchArrays:
    """Cleared per-row arrays (sums, marks, reached rows) kept between walks on a graph of one size. A walk leaves
    them cleared (it zeroes only the rows it reached); allocating and first touching 13 bytes per row for every walk
    cost about as much as a step at 10x."""

    def __init__(self) -> None:
        self._free: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._lock = threading.Lock()

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            while self._free:
                arrays = self._free.pop()
                if len(arrays[0]) == n:
                    return arrays
                self._free.clear()  # the graph grew: arrays of the old size are of no further use
        return np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.uint8), np.empty(n, dtype=np.int32)

    def give(self, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        with self._lock:
            if len(self._free) < 4:  # as many as queries walk at once, about
                self._free.append(arrays)


_scratch = _ScratchArrays()


class SparseWalk:
    """The scratch state of a walk's sparse steps, whose inner loops are compiled (graphdex/graph/_walk.c).

    A step adds its entries into ``sums`` and lists each row reached once; then only the rows that will pass a
    score on in the next step (at or above the tolerance, and the seeds) are read back, while the rows reached are
    cleared. The last step reads every row reached into the scores. Reading every reached row after each step, and
    finding them with a pass over all the graph's rows, was about half of a walk at 10x in numpy, for scores the
    next step does not use: a row's score after a step depends only on that step's entries and its restart share."""

    def __init__(self, n: int, seed_rows: np.ndarray, restarting: np.ndarray, alpha: float, tolerance: float) -> None:
        self.n, self.seed_rows, self.restarting, self.alpha, self.tolerance = n, seed_rows, restarting, alpha, tolerance
        self.sums, self._mark, self._reached = _scratch.take(n)
        self._count = 0

    def release(self) -> None:
        """Hand the per-row arrays to the next walk, if this one left them cleared (it always does unless a step
        raised)."""
        if self._count == 0:
            _scratch.give((self.sums, self._mark, self._reached))

    def spread(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, columns: np.ndarray, values: np.ndarray) -> None:
        if len(columns):
            self._count = _walk.spread(indptr, indices, data, columns.astype(np.int32, copy=False), values.astype(np.float32, copy=False),
                                       self.sums, self._mark, self._reached, self._count)

    def _seed_scores(self) -> np.ndarray:
        scores = self.sums[self.seed_rows].astype(np.float32)
        scores *= 1 - self.alpha
        scores += self.restarting
        return scores

    def passing_on(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows (ascending) whose score after the step is at least the tolerance, with those scores. The step's
        sums stay until ``clear`` (the walk goes on) or ``every_row`` (it ends, or goes on with dense steps)."""
        seed_scores = self._seed_scores()
        rows = np.empty(self._count, dtype=np.int32)
        values = np.empty(self._count, dtype=np.float32)
        kept = _walk.collect(self.sums, self._mark, self._reached, self._count, 1 - self.alpha, self.tolerance, rows, values, None)
        rows = rows[:kept]
        at = np.searchsorted(self.seed_rows, rows)  # seed_rows is sorted: cheaper than np.isin, which sorts both
        others = self.seed_rows[np.minimum(at, len(self.seed_rows) - 1)] != rows  # a walk has at least one seed
        seeds = seed_scores >= self.tolerance
        rows = np.concatenate([rows[others], self.seed_rows[seeds]])
        values = np.concatenate([values[:kept][others], seed_scores[seeds]])
        order = np.argsort(rows, kind="stable")
        return rows[order], values[order]

    def clear(self) -> None:
        _walk.clear(self.sums, self._mark, self._reached, self._count)
        self._count = 0

    def every_row(self) -> np.ndarray:
        """The scores after the step of every row (zero where none was reached); clears the step's sums."""
        seed_scores = self._seed_scores()
        scores = np.zeros(self.n, dtype=np.float32)
        _walk.collect(self.sums, self._mark, self._reached, self._count, 1 - self.alpha, self.tolerance, self._reached[:0], scores[:0], scores)
        self._count = 0
        scores[self.seed_rows] = seed_scores
        return scores
