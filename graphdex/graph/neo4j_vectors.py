"""Vectors in Neo4j itself: each searchable node carries its embedding (``embedding``, with ``embedding_digest``, the
digest of the text it was made from) and Neo4j 5's native HNSW vector indexes search them.

Why: a process that serves queries then keeps no vector state of its own, so any number of API replicas can answer
from one database, and the writer's vectors are written by the same transaction as the nodes they belong to
(``Neo4jGraphStore.write(vectors=...)``), so a crash can never leave the two out of step.

One index per searchable label (``graphdex_<type>_embedding``) serves every workspace of the database, and Neo4j 5.26
cannot filter inside the index search: a search asks the index for more neighbours than it needs (OVERFETCH times k)
and keeps those of its workspace; when that leaves fewer than k and the index had more to give, it falls back to an
exact scan of the workspace's own nodes (found through the (workspace, id) constraint), so a small workspace beside a
large one still gets its true nearest neighbours. Scores are converted from Neo4j's (1 + cosine) / 2 back to the
cosine similarity the hnswlib index gives. Quantization is turned off, so scores are exact.

The crash marker (``dirty``) is a property of the workspace's meta node, as is the embedding model's name, so that
nothing about the vectors lives on the writer's disk either.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np

from graphdex.common.embedder import settings_for
from graphdex.graph.model import SEARCHABLE_TYPES, NodeType
from graphdex.graph.neo4j_store import Neo4jGraphStore
from graphdex.graph.store import StoreError
from graphdex.graph.vectors import VectorChanges

log = logging.getLogger(__name__)

#: neighbours asked of the shared index per neighbour wanted (the other workspaces' nodes are filtered out after)
OVERFETCH = 4
#: fewest neighbours asked of the index: small k would otherwise explore too little of the graph
MIN_FETCH = 40
INDEX_ONLINE_SECONDS = 300


def index_name(type_: NodeType) -> str:
    return f"graphdex_{NodeType(type_).value.lower()}_embedding"


class Neo4jVectorIndex:
    """The embeddings of one node type in one workspace (a ``VectorIndex``)."""

    def __init__(self, store: Neo4jGraphStore, type_: NodeType, dim: int) -> None:
        self._store = store
        self._type = NodeType(type_)
        self._label = self._type.value
        self.dim = dim

    def add(self, ids: Sequence[str], vectors: np.ndarray, digests: Sequence[str] | None = None) -> None:
        """Outside an ingest's own write (tests, tools): one transaction of its own, through the store."""
        self._store.write(vectors=VectorChanges(added={self._type: (list(ids), vectors, list(digests or [""] * len(ids)))}))

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            self._store.write(vectors=VectorChanges(deleted={self._type: ids}))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).ravel().tolist()
        fetch = max(k * OVERFETCH, MIN_FETCH)
        rows = self._store.db.read(
            "CALL db.index.vector.queryNodes($index, $fetch, $vector) YIELD node, score "
            "WITH collect(CASE WHEN node.workspace = $ws THEN [node.id, score] END) AS hits, count(*) AS fetched "
            "RETURN hits[..$k] AS hits, fetched",
            index=index_name(self._type), fetch=fetch, vector=query, k=k)
        hits, fetched = (rows[0]["hits"], rows[0]["fetched"]) if rows else ([], 0)
        if len(hits) < k and fetched >= fetch:  # other workspaces crowded this one out: ask its own nodes exactly
            hits = [[r["id"], r["score"]] for r in self._store.db.read(
                f"MATCH (n:{self._label} {{workspace: $ws}}) WHERE n.embedding IS NOT NULL "
                "WITH n, vector.similarity.cosine(n.embedding, $vector) AS score ORDER BY score DESC, n.id LIMIT $k "
                "RETURN n.id AS id, score", vector=query, k=k)]
        return [(node_id, 2.0 * float(score) - 1.0) for node_id, score in hits]

    def get(self, ids: Sequence[str]) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = self._store.db.read(
            f"UNWIND $ids AS id MATCH (n:{self._label} {{workspace: $ws, id: id}}) WHERE n.embedding IS NOT NULL RETURN n.id AS id, n.embedding AS v",
            ids=list(ids))
        found = {r["id"]: r["v"] for r in rows}
        return np.asarray([found[i] for i in ids], dtype=np.float32)

    def similarities(self, ids: Sequence[str], vector: np.ndarray) -> dict[str, float]:
        """Computed in the database: only the scores cross the wire, not the vectors. Neo4j's cosine normalises
        ``vector``; scaling back by its length gives the dot product the protocol asks for (stored vectors are unit)."""
        if not ids:
            return {}
        vector = np.asarray(vector, dtype=np.float32).ravel()
        rows = self._store.db.read(
            f"UNWIND $ids AS id MATCH (n:{self._label} {{workspace: $ws, id: id}}) WHERE n.embedding IS NOT NULL "
            "RETURN n.id AS id, vector.similarity.cosine(n.embedding, $vector) AS score",
            ids=list(ids), vector=vector.tolist())
        length = float(np.linalg.norm(vector))
        return {r["id"]: (2.0 * float(r["score"]) - 1.0) * length for r in rows}

    def ids(self) -> set[str]:
        return set(self.digests())

    def digests(self) -> dict[str, str]:
        rows = self._store.db.read(
            f"MATCH (n:{self._label} {{workspace: $ws}}) WHERE n.embedding IS NOT NULL RETURN n.id AS id, coalesce(n.embedding_digest, '') AS d")
        return {r["id"]: r["d"] for r in rows}

    def __len__(self) -> int:
        return int(self._store.db.read(f"MATCH (n:{self._label} {{workspace: $ws}}) WHERE n.embedding IS NOT NULL RETURN count(n) AS n")[0]["n"])

    def __contains__(self, node_id: object) -> bool:
        return bool(self._store.db.read(
            f"MATCH (n:{self._label} {{workspace: $ws, id: $id}}) WHERE n.embedding IS NOT NULL RETURN n.id AS id", id=str(node_id)))


class Neo4jVectorIndexes:
    """The ``VectorIndexes`` of one Neo4j workspace, kept in the graph store itself."""

    in_store = True

    def __init__(self, store: Neo4jGraphStore, dim: int, model_name: str, m: int = 16, ef_construction: int = 200) -> None:
        self._store = store
        self.dim = dim
        self.model_name = model_name
        self._marked = False  # this process has set the dirty mark (it is the only writer: no need to read it again)
        self._suspect = False
        self._ensure_indexes(m, ef_construction)
        self._check_model()
        self.indexes: dict[NodeType, Neo4jVectorIndex] = {t: Neo4jVectorIndex(store, t, dim) for t in SEARCHABLE_TYPES}

    def _ensure_indexes(self, m: int, ef_construction: int) -> None:
        """One index per searchable label for the whole database; refuses one made for another dimension."""
        existing = {r["name"]: r["options"]["indexConfig"] for r in self._store.db.read(
            "SHOW VECTOR INDEXES YIELD name, options WHERE name STARTS WITH 'graphdex_' RETURN name, options")}
        for type_ in SEARCHABLE_TYPES:
            name = index_name(type_)
            if name in existing:
                dims = int(existing[name].get("vector.dimensions") or 0)
                if dims != self.dim:
                    raise StoreError(f"the Neo4j vector index {name} holds vectors of dimension {dims}, but the configured embedder "
                                     f"({self.model_name}) makes {self.dim}: use the same GRAPHDEX_EMBEDDER, another database, or "
                                     "GRAPHDEX_NEO4J_VECTORS=local")
                continue
            self._store.db.schema(
                f"CREATE VECTOR INDEX {name} IF NOT EXISTS FOR (n:{type_.value}) ON n.embedding OPTIONS {{indexConfig: {{"
                "`vector.dimensions`: $dim, `vector.similarity_function`: 'cosine', `vector.quantization.enabled`: false, "
                "`vector.hnsw.m`: $m, `vector.hnsw.ef_construction`: $ef}}",
                dim=self.dim, m=m, ef=ef_construction)
            log.info("created the Neo4j vector index %s (dimension %d)", name, self.dim)
        for type_ in SEARCHABLE_TYPES:
            self._store.db.schema("CALL db.awaitIndex($name, $seconds)", name=index_name(type_), seconds=INDEX_ONLINE_SECONDS)

    def _check_model(self) -> None:
        rows = self._store.db.read("MATCH (m:GraphdexMeta {workspace: $ws}) RETURN m.vector_model AS model, m.vector_dim AS dim")
        if rows and rows[0]["model"] is not None and (rows[0]["model"] != self.model_name or rows[0]["dim"] != self.dim):
            raise StoreError(f"the vectors of this Neo4j workspace were made by {rows[0]['model']} (dimension {rows[0]['dim']}), but the "
                             f"configured embedder is {self.model_name} (dimension {self.dim}): set {settings_for(rows[0]['model'])} to "
                             "read them, or use a new GRAPHDEX_NEO4J_WORKSPACE")

    def __getitem__(self, type_: NodeType) -> Neo4jVectorIndex:
        return self.indexes[type_]

    @property
    def dirty(self) -> bool:
        rows = self._store.db.read("MATCH (m:GraphdexMeta {workspace: $ws}) RETURN coalesce(m.vectors_dirty, false) AS dirty")
        return bool(rows and rows[0]["dirty"])

    def mark_dirty(self) -> None:
        """Set once per operation, on the meta node, in a transaction that commits before the operation's first write;
        it also records the embedding model, which a later start with another model is refused by."""
        if self._marked:
            return
        self._store.db.write(lambda tx: tx.run(
            "MERGE (m:GraphdexMeta {workspace: $ws}) SET m.vectors_dirty = true, m.vector_model = $model, m.vector_dim = $dim",
            ws=self._store.workspace, model=self.model_name, dim=self.dim).consume())
        self._marked = True

    def suspect(self) -> None:
        self._suspect = True

    def save(self, complete: bool = False) -> None:
        """The vectors are durable with each write already; a complete save only clears the operation's mark."""
        if not complete or self._suspect:
            return
        self._store.db.write(lambda tx: tx.run(
            "MATCH (m:GraphdexMeta {workspace: $ws}) REMOVE m.vectors_dirty", ws=self._store.workspace).consume())
        self._marked = False

    def drop_shadowed(self) -> None:
        """Nothing to check: a node's vector is one of its properties."""
        return None

    def counts(self) -> dict[str, int]:
        return {str(t): len(index) for t, index in self.indexes.items()}
