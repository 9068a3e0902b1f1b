"""What one chunk contributes to a graph element: the one definition the writer fills and ``derive`` reads.

Elements keep these per supporting chunk (``Node.contrib`` / ``Edge.contrib``: chunk id -> contribution), and every
derived property is computed from them alone; that is what makes delete exact. They are stored as JSON, so they are
TypedDicts: named, checked fields with no conversion on the way to and from a store.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class EntityContribution(TypedDict):
    """How one chunk names an entity."""

    names: dict[str, int]  # surface form -> times the chunk uses it
    types: dict[str, int]  # entity type -> times the chunk's mentions have it
    sentence: str  # the sentence of the chunk's first mention (the entity's description is built from these)


class RelationContribution(TypedDict):
    """What one chunk states about a relation between two entities."""

    keywords: list[str]  # the predicate words ("directed by")
    first_name: str  # how the chunk spells the relation's first end (ends are in id order)
    second_name: str  # ... and its second end
    kind: str  # how it was found: "dependency", "cooccurrence" or "llm"
    sentence: str  # the evidence sentence
    direction: int  # +1 when the chunk reads first -> second, -1 when second -> first
    strength: NotRequired[int]  # 1-10, when the extractor rates it (the LLM does)


class MentionContribution(TypedDict):
    """A MENTIONS edge: how strongly one chunk mentions an entity."""

    count: int  # mentions in the chunk, plus a bonus when the entity is the document's subject


class RelatedContribution(TypedDict):
    """A RELATED_TO edge: the predicate words one chunk uses between two entities (none for co-occurrence)."""

    keywords: list[str]
