"""What query and ingest ask of vector indexes, whichever keeps them: hnswlib files under the data directory
(``vector_index.VectorIndexSet``) or Neo4j's native vector indexes over node properties
(``neo4j_vectors.Neo4jVectorIndexes``).

Both answer the same calls with the same shapes: ``search`` gives ``(node id, cosine similarity)`` best first, so the
query code cannot tell them apart. They differ in where a write lands: hnswlib files are changed after the graph's
transaction (a crash in between is healed from the dirty marker), while vectors kept in the graph store are written
by that very transaction (``in_store``), so graph and vectors can never be out of step there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from graphdex.graph.model import NodeType


@dataclass(frozen=True)
class VectorChanges:
    """Vectors to write with a graph write: per node type, (ids, one row per id, digests of the texts embedded),
    and ids whose vectors go."""

    added: Mapping[NodeType, tuple[Sequence[str], np.ndarray, Sequence[str]]] = field(default_factory=dict)
    deleted: Mapping[NodeType, Iterable[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(len(ids) for ids, _, _ in self.added.values()) or any(True for ids in self.deleted.values() for _ in ids)


class VectorIndex(Protocol):
    """The vectors of one searchable node type."""

    dim: int

    def add(self, ids: Sequence[str], vectors: np.ndarray, digests: Sequence[str] | None = None) -> None:
        """Insert or replace the vectors of ``ids``; ``digests`` name the texts they were made from."""
        ...

    def delete(self, ids: Iterable[str]) -> None:
        ...

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest ids with their cosine similarity, best first."""
        ...

    def get(self, ids: Sequence[str]) -> np.ndarray:
        """The vectors of ``ids``, one row each in that order (KeyError for an id without one)."""
        ...

    def similarities(self, ids: Sequence[str], vector: np.ndarray) -> dict[str, float]:
        """The dot product of ``vector`` with each of ``ids``' (unit) vectors, for those that have one: the cosine
        similarity when ``vector`` is unit length, a mix of similarities when it mixes unit vectors. One call: no
        round trip per id."""
        ...

    def ids(self) -> set[str]:
        ...

    def digests(self) -> dict[str, str]:
        """Node id -> digest of the text its vector was made from ("" when unknown)."""
        ...

    def __len__(self) -> int:
        ...

    def __contains__(self, node_id: object) -> bool:
        ...


class VectorIndexes(Protocol):
    """The per-type indexes of one graph, with the crash marker of the operation changing them."""

    dim: int
    model_name: str
    #: True when the vectors live in the graph store and ``GraphStore.write(vectors=...)`` writes them in its transaction.
    in_store: bool

    def __getitem__(self, type_: NodeType) -> VectorIndex:
        ...

    @property
    def dirty(self) -> bool:
        """An operation began changing the graph and vectors and has not ended with a complete save."""
        ...

    def mark_dirty(self) -> None:
        """Durably mark that an operation is changing graph and vectors (before its first change)."""
        ...

    def suspect(self) -> None:
        """The vectors may no longer match the graph: keep the marker until a start verifies them."""
        ...

    def save(self, complete: bool = False) -> None:
        """Make the vectors durable; ``complete`` when the operation has ended (clears the marker)."""
        ...

    def counts(self) -> dict[str, int]:
        ...

    def drop_shadowed(self) -> list[NodeType] | None:
        """Once per index: rebuild each type whose index holds an id twice (what replacing vectors did before issue
        23's fix), without those ids, so the caller embeds them again. The types rebuilt; None when nothing needed
        checking (checked before, or vectors that cannot hold an id twice)."""
        ...
