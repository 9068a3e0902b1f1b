"""The heterogeneous graph: typed nodes and edges that record which chunks support them.

Every element keeps, for each supporting chunk id, what that chunk said about it (its contributions), and a
``summary``: the aggregate of all of them (counts of names, the first sentences...), from which its derived properties
(an entity's name, type, description...) are computed. A summary of two sets of contributions is the merge of their
summaries, so a write adds a batch's contributions without reading the thousands a hub entity already has; removing
a chunk's contributions and summarising the rest gives exactly the element that never saw the chunk. That is what
makes delete exact.

Stores keep contributions per (element, chunk), so ``contrib`` on an element is what it carries, not always all:
read with contributions, every one; written, the ones to add (a chunk's contribution replaces what that chunk said
before). A contribution lives as long as its chunk: deleting a node deletes the contributions keyed by its id.
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
#: older graphdex is refused with a clear message instead of being misread. 2: contributions with named fields. 3: summaries
#: beside contributions stored per chunk, provenance lists bounded.
GRAPH_SCHEMA_VERSION = 3

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
    summary: dict[str, Any] = field(default_factory=dict)  # the aggregate of every contribution (ingest.summaries)

    @property
    def support(self) -> set[str]:
        """The chunks whose contributions the node carries."""
        return set(self.contrib)


EdgeKey = tuple[str, str, str]  # (source id, edge type, target id)


@dataclass(slots=True)
class Edge:
    source: str
    type: EdgeType
    target: str
    props: dict[str, Any] = field(default_factory=dict)
    contrib: Contributions = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)  # the aggregate of every contribution (ingest.summaries)

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
