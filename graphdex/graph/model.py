"""The heterogeneous graph: typed nodes and edges that record which chunks support them.

Every element keeps ``contrib``: for each supporting chunk id, what that chunk said about it. Support is the set of
those chunk ids. Derived properties (an entity's name, type, description...) are computed from ``contrib`` alone, so
removing a chunk's contribution gives exactly the element that never saw the chunk. That is what makes delete exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class NodeType(StrEnum):
    DOCUMENT = "Document"
    CHUNK = "Chunk"
    ENTITY = "Entity"
    RELATION = "Relation"
    COMMUNITY = "Community"


class EdgeType(StrEnum):
    HAS_CHUNK = "HAS_CHUNK"  # Document -> Chunk
    MENTIONS = "MENTIONS"  # Chunk -> Entity
    EVIDENCES = "EVIDENCES"  # Chunk -> Relation
    RELATED_TO = "RELATED_TO"  # Entity -> Entity (the readable shortcut of a Relation node)
    CONNECTS = "CONNECTS"  # Relation -> each of its two entities
    IN_COMMUNITY = "IN_COMMUNITY"  # Entity -> Community


#: The node types each edge type joins (source, target): the schema both stores hold to.
EDGE_ENDS: dict[EdgeType, tuple[NodeType, NodeType]] = {
    EdgeType.HAS_CHUNK: (NodeType.DOCUMENT, NodeType.CHUNK),
    EdgeType.MENTIONS: (NodeType.CHUNK, NodeType.ENTITY),
    EdgeType.EVIDENCES: (NodeType.CHUNK, NodeType.RELATION),
    EdgeType.RELATED_TO: (NodeType.ENTITY, NodeType.ENTITY),
    EdgeType.CONNECTS: (NodeType.RELATION, NodeType.ENTITY),
    EdgeType.IN_COMMUNITY: (NodeType.ENTITY, NodeType.COMMUNITY),
}

#: spaCy NER labels (and our own) -> the label of an entity's kind: its second label in Neo4j, and what the Neo4j
#: Browser style (docs/graphdex.grass) and the web UI colour it by.
ENTITY_LABELS: dict[str, str] = {
    "PERSON": "Person", "ORG": "Organization", "GPE": "Place", "LOC": "Location", "FAC": "Facility",
    "NORP": "Group", "EVENT": "Event", "WORK_OF_ART": "Work", "PRODUCT": "Product", "LAW": "Law",
    "LANGUAGE": "Language", "CONCEPT": "Concept", "TOPIC": "Topic",
    # the LLM extractor's default types
    "ORGANIZATION": "Organization", "LOCATION": "Location", "WORK": "Work",
}
OTHER_ENTITY_LABEL = "OtherEntity"


def entity_label(entity_type: str) -> str:
    return ENTITY_LABELS.get(str(entity_type).upper(), OTHER_ENTITY_LABEL)


#: Node types that get a vector index and can be searched by meaning.
SEARCHABLE_TYPES: tuple[NodeType, ...] = (NodeType.CHUNK, NodeType.ENTITY, NodeType.RELATION, NodeType.COMMUNITY)

Contributions = dict[str, dict[str, Any]]  # chunk id -> what that chunk said (its shape: ingest.contributions)

#: The version of what stores hold. Bumped when the shape of stored elements changes, so an index written by an
#: older graphdex is refused with a clear message instead of being misread. 2: contributions with named fields.
GRAPH_SCHEMA_VERSION = 2

#: The longest entity name a store is given. Both stores index names, and Neo4j's b-tree index refuses a key over
#: about 8 KB: 1000 characters stay under it even at 4 UTF-8 bytes each. One limit for both stores, so an index
#: built on one is the index the other would build.
MAX_NAME_CHARS = 1000


@dataclass(slots=True)
class Node:
    id: str
    type: NodeType
    props: dict[str, Any] = field(default_factory=dict)
    contrib: Contributions = field(default_factory=dict)

    @property
    def support(self) -> set[str]:
        return set(self.contrib)

    @property
    def support_count(self) -> int:
        """How many chunks support the edge: its derived ``support`` prop, or its contributions when it has none
        (structural edges). What a store sums as an edge type's total support and the community layer weighs."""
        return int(self.props.get("support") or len(self.contrib))


EdgeKey = tuple[str, str, str]  # (source id, edge type, target id)


@dataclass(slots=True)
class Edge:
    source: str
    type: EdgeType
    target: str
    props: dict[str, Any] = field(default_factory=dict)
    contrib: Contributions = field(default_factory=dict)

    @property
    def key(self) -> EdgeKey:
        return (self.source, str(self.type), self.target)

    @property
    def support(self) -> set[str]:
        return set(self.contrib)

    @property
    def support_count(self) -> int:
        """How many chunks support the edge: its derived ``support`` prop, or its contributions when it has none
        (structural edges). What a store sums as an edge type's total support and the community layer weighs."""
        return int(self.props.get("support") or len(self.contrib))
