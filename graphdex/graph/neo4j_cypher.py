"""The Cypher vocabulary of the Neo4j store: the labels entities carry by kind, which properties are stored natively,
and the query fragments that find a node or an edge through the unique indexes. Labels and relationship types come
only from the fixed enums here (Cypher cannot take them as parameters), never from user input."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from graphdex.graph.model import EDGE_ENDS, ENTITY_LABELS, OTHER_ENTITY_LABEL, EdgeType, NodeType
from graphdex.graph.vectors import VectorChanges

BATCH = 1000
READABLE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# properties the store sets itself: a node's own properties never overwrite them
RESERVED = frozenset({"id", "workspace", "embedding", "embedding_digest"})


def primitive(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool)):
        return True
    return isinstance(value, list) and all(isinstance(v, (str, int, float, bool)) for v in value) and len({type(v) for v in value}) <= 1


def readable_props(props: dict[str, Any]) -> dict[str, Any]:
    """The properties Neo4j can hold natively (nested maps stay in the JSON copy only)."""
    return {k: v for k, v in props.items() if READABLE.match(k) and primitive(v) and k not in RESERVED}


def find_node(var: str, id_expr: str) -> str:
    """Cypher that binds ``var`` to the node with id ``id_expr`` whatever its type, through each type's unique index
    (a label-less MATCH would scan every node of the database)."""
    branches = " UNION ".join(f"MATCH ({var}:{t.value} {{workspace: $ws, id: {id_expr}}}) RETURN {var}" for t in NodeType)
    return f"CALL ({id_expr.split('.')[0]}) {{ {branches} }}"


def typed_edge(type_: EdgeType, source_expr: str, target_expr: str) -> str:
    """A MATCH pattern for one edge, found through the unique indexes of the two node types the edge type joins."""
    source_label, target_label = (t.value for t in EDGE_ENDS[type_])
    return (f"(a:{source_label} {{workspace: $ws, id: {source_expr}}})-[r:{type_.value}]->"
            f"(b:{target_label} {{workspace: $ws, id: {target_expr}}})")


#: An edge's support (the chunks supporting it): its ``support`` prop, stored natively with its readable props, or
#: without one the number of its contributions.
SUPPORT = "CASE WHEN coalesce(r.support, 0) = 0 THEN size(coalesce(r.support_chunks, [])) ELSE toInteger(r.support) END"


def batches(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def vector_params(vectors: VectorChanges | None) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """Vector changes as Cypher parameters, by node label (a fixed enum, never user input)."""
    if not vectors:
        return {}, {}
    added = {NodeType(t).value: [{"id": i, "vector": row.tolist(), "digest": d} for i, row, d in zip(ids, np.asarray(matrix, dtype=np.float32), digests)]
             for t, (ids, matrix, digests) in vectors.added.items() if len(ids)}
    deleted = {NodeType(t).value: list(ids) for t, ids in vectors.deleted.items()}
    return added, {label: ids for label, ids in deleted.items() if ids}


ALL_KINDS = ":".join(sorted(set(ENTITY_LABELS.values()) | {OTHER_ENTITY_LABEL}))
