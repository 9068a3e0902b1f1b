"""Summaries: the aggregate of an element's contributions, from which its properties are derived.

Why: an entity named in thousands of chunks would otherwise have all of its contributions read, merged and written
back by every batch that names it again, so a build's cost grew with the square of the corpus. A summary holds what
derivation needs in bounded size (counts by name, type or keyword; the first few sentences, chunks and documents in
id order; totals), and the summary of two disjoint sets of contributions is the ``merge`` of their summaries: a batch
adds its own contributions' summary to the stored one. Merging is commutative and associative, so the result never
depends on the order chunks arrived in; a delete summarises the contributions left (``summarize``), which is exactly
what a build that never saw the deleted chunks holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, cast

from graphdex.common.ids import document_of_chunk
from graphdex.graph.model import Contributions, NodeType
from graphdex.ingest.contributions import EntityContribution, RelationContribution

#: Sentences a summary keeps, the first distinct ones in chunk order: the description shows a few, a model's
#: summary (when one is configured) reads up to this many.
SUMMARY_SENTENCES = 16
#: Chunk and document ids a summary keeps (the smallest): citations and global retrieval read them; ``support``
#: counts them all.
PROVENANCE_IDS = 64

#: How each field of a summary merges: counts by key are added, totals summed, and lists keep their first entries.
_FIRST: dict[str, int] = {"sentences": SUMMARY_SENTENCES, "chunks": PROVENANCE_IDS, "documents": PROVENANCE_IDS}


class EntitySummary(TypedDict):
    names: dict[str, int]  # surface form -> mentions
    types: dict[str, int]  # entity type -> mentions
    sentences: list[list[str]]  # [chunk, sentence]: the first distinct sentences, each at the first chunk saying it
    chunks: list[str]
    documents: list[str]
    support: int  # supporting chunks


class RelationSummary(TypedDict):
    keywords: dict[str, int]
    first_names: dict[str, int]
    second_names: dict[str, int]
    kinds: dict[str, int]
    direction: int  # the sum of the statements' directions
    strength_total: int  # an LLM extractor's ratings, summed...
    strength_count: int  # ... over this many statements
    sentences: list[list[str]]
    chunks: list[str]
    documents: list[str]
    support: int


class EdgeSummary(TypedDict):
    weight: int  # summed mention counts (1 per chunk for edges without counts)
    support: int
    keywords: dict[str, int]


def _first_sentences(pairs: list[list[str]]) -> list[list[str]]:
    """Distinct sentences, each at the smallest chunk that says it, in chunk order, the first ``SUMMARY_SENTENCES``."""
    first: dict[str, str] = {}
    for chunk, sentence in sorted(pairs):
        first.setdefault(sentence, chunk)
    return sorted([chunk, sentence] for sentence, chunk in first.items())[:SUMMARY_SENTENCES]


def merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The summary of the union of two disjoint sets of contributions, from the summaries of each."""
    out: dict[str, Any] = {}
    for key in a.keys() | b.keys():
        if key not in a or key not in b:
            out[key] = a.get(key, b.get(key))
            continue
        x, y = a[key], b[key]
        if isinstance(x, dict):
            out[key] = {k: x.get(k, 0) + y.get(k, 0) for k in x.keys() | y.keys()}
        elif key == "sentences":
            out[key] = _first_sentences(x + y)
        elif isinstance(x, list):
            out[key] = sorted(set(x) | set(y))[:_FIRST[key]]
        else:
            out[key] = x + y
    return out


def _provenance(chunk: str) -> dict[str, Any]:
    return {"chunks": [chunk], "documents": [document_of_chunk(chunk)], "support": 1}


def entity_summary(chunk: str, part: EntityContribution) -> EntitySummary:
    sentences = [[chunk, part["sentence"]]] if part["sentence"] else []
    return cast(EntitySummary, {"names": dict(part["names"]), "types": dict(part["types"]), "sentences": sentences, **_provenance(chunk)})


def relation_summary(chunk: str, part: RelationContribution) -> RelationSummary:
    strength = part.get("strength")
    return cast(RelationSummary, {
        "keywords": dict.fromkeys(part["keywords"], 1), "first_names": {part["first_name"]: 1}, "second_names": {part["second_name"]: 1},
        "kinds": {part["kind"]: 1}, "direction": part["direction"], "strength_total": strength or 0, "strength_count": int(strength is not None),
        "sentences": [[chunk, part["sentence"]]] if part["sentence"] else [], **_provenance(chunk),
    })


def edge_summary(part: Mapping[str, Any]) -> EdgeSummary:
    keywords = part.get("keywords", ())
    return {"weight": int(part.get("count", 1)), "support": 1, "keywords": dict.fromkeys(keywords, 1)}


def summarize(type_: NodeType | None, contrib: Contributions) -> dict[str, Any]:
    """The summary of a node's (``type_``) or an edge's (None) contributions; empty for none."""
    summary: dict[str, Any] = {}
    for chunk in sorted(contrib):
        part = contrib[chunk]
        if type_ == NodeType.ENTITY:
            one: Mapping[str, Any] = entity_summary(chunk, cast(EntityContribution, part))
        elif type_ == NodeType.RELATION:
            one = relation_summary(chunk, cast(RelationContribution, part))
        else:
            one = edge_summary(part)
        summary = merge(summary, one)
    return summary
