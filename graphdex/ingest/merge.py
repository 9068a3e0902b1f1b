"""Pure merge functions: a batch's extractions into graph elements, merged with what is stored, and elements with a
document's chunks taken out. No store, no vectors: the writer fetches and writes, these decide.

Every function here depends only on its inputs (never on the order chunks arrived in), which is what lets a batch
merged against stored elements equal one built in a single pass, and a removal equal a graph that never saw the
document.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from graphdex.common.ids import chunk_id, entity_id, relation_id
from graphdex.common.resolution import TITLE_DISAMBIGUATION, normalize_key, surname_aliases
from graphdex.graph.model import MAX_NAME_CHARS, Contributions, Edge, EdgeKey, EdgeType, Node, NodeType
from graphdex.ingest.chunking import Chunk
from graphdex.ingest.contributions import EntityContribution, MentionContribution, RelatedContribution, RelationContribution
from graphdex.ingest.derive import Derivation, derive_edge, embedding_text
from graphdex.ingest.documents import SourceDocument
from graphdex.ingest.extraction import ChunkExtraction
from graphdex.ingest.summaries import merge, summarize

#: Added to the mention count of a document's own subject in its chunks: a passage is about its title entity far
#: more than about the entities it names in passing.
TOPIC_BONUS = 3
#: Entity types that name a place (spaCy's; an LLM extractor's types are its own, and leave titles whole)
_PLACE_TYPES = frozenset({"GPE", "LOC"})


@dataclass
class PreparedDocument:
    """A new or changed document, chunked and waiting for its extractions."""

    doc: SourceDocument
    doc_id: str
    hash: str
    chunks: list[Chunk]
    replaces_stored: bool = False  # an older version was stored (and has been removed to make way for this one)


@dataclass
class BatchGraph:
    """One write batch's own elements: each carries only the contributions of the batch's chunks."""

    nodes: dict[str, Node] = field(default_factory=dict)  # the batch's documents and chunks, complete
    edges: dict[EdgeKey, Edge] = field(default_factory=dict)
    entities: dict[str, Contributions] = field(default_factory=lambda: defaultdict(dict))
    relations: dict[str, Contributions] = field(default_factory=lambda: defaultdict(dict))
    relation_ends: dict[str, tuple[str, str]] = field(default_factory=dict)
    words: int = 0
    problem_chunks: int = 0

    def edge(self, source: str, type_: EdgeType, target: str) -> Edge:
        return self.edges.setdefault((source, str(type_), target), Edge(source, type_, target))

    def stored_edge_keys(self) -> list[EdgeKey]:
        """The edges that other chunks may support too, whose stored summaries the merge adds to."""
        return [key for key, edge in self.edges.items() if edge.type in (EdgeType.RELATED_TO, EdgeType.CONNECTS)]


@dataclass
class MergedBatch:
    nodes: dict[str, Node]
    edges: dict[EdgeKey, Edge]
    to_embed: list[Node]  # chunks, and entities and relations whose embedded text changed
    entities: set[str]
    relations: set[str]


@dataclass
class Removal:
    """What taking some chunks' contributions out of the elements they support leaves."""

    updated: list[Node]
    deleted: list[Node]
    kept_edges: list[Edge]
    dropped_edges: list[EdgeKey]
    to_embed: list[Node]


def batch_graph(batch: Sequence[tuple[PreparedDocument, list[ChunkExtraction]]], ingested_at: str) -> BatchGraph:
    graph = BatchGraph()
    for item, extractions in batch:
        doc, doc_id = item.doc, item.doc_id
        words = len(doc.text.split())
        graph.words += words
        graph.nodes[doc_id] = Node(doc_id, NodeType.DOCUMENT, {
            "source": doc.source, "title": doc.title, "content_hash": item.hash, "metadata": doc.metadata,
            "chunk_count": len(item.chunks), "words": words, "ingested_at": ingested_at,
        })
        title_entity = entity_id(subject_key(doc.title, extractions[0] if extractions else None)) if doc.title else ""
        chunk_ids = [chunk_id(doc_id, chunk.index) for chunk in item.chunks]
        for chunk, cid, extraction in zip(item.chunks, chunk_ids, with_surnames_resolved(extractions)):
            graph.nodes[cid] = Node(cid, NodeType.CHUNK, {
                "text": chunk.text, "title": doc.title, "document_id": doc_id, "index": chunk.index,
                "start": chunk.start, "end": chunk.end, "tokens": chunk.tokens,
                **doc.layout.locate(chunk.start, chunk.end),  # section, page, page_end: only those the file tells
                **({"extraction_problems": extraction.problems} if extraction.problems else {}),
            })
            graph.problem_chunks += bool(extraction.problems)
            graph.edge(doc_id, EdgeType.HAS_CHUNK, cid).props = {"index": chunk.index}
            _collect(graph, cid, extraction, title_entity)
        if title_entity and graph.entities.get(title_entity, {}).keys() & set(chunk_ids):
            # the entity this document is about: reaching it in the graph should lead to this document's passages
            graph.nodes[doc_id].props["about"] = title_entity
    return graph


def subject_key(title: str, opening: ChunkExtraction | None) -> str:
    """The key of the entity a document is about, from its title: without a trailing parenthetical ("Mercury
    (planet)"), and without a trailing place after a comma when the document's first chunk names the two apart
    ("West Chicago, Illinois" over "West Chicago is a city in DuPage County, Illinois"), so that the documents which
    name the place as "West Chicago" lead to its article. A qualifier that is not a place keeps the title whole
    ("Lambert, Margrave of Tuscany": a first name alone would join every Lambert). It depends on the document alone,
    never on what else is indexed."""
    name = TITLE_DISAMBIGUATION.sub("", title)
    head, comma, qualifier = name.rpartition(",")
    if comma and opening is not None:
        head_key, place_key = normalize_key(head), normalize_key(qualifier)
        named = {m.key for m in opening.entities}
        places = {m.key for m in opening.entities if m.type in _PLACE_TYPES}
        if head_key and head_key in named and place_key in places:
            return head_key
    return normalize_key(name)


def _collect(graph: BatchGraph, cid: str, extraction: ChunkExtraction, title_entity: str) -> None:
    """One chunk's extraction as contributions to entities, relations and their edges."""
    mention_counts: Counter = Counter()
    for mention in extraction.entities:
        if len(mention.surface) > MAX_NAME_CHARS:  # no name (a model's run-on output): no store would index it
            continue
        eid = entity_id(mention.key)
        part: EntityContribution = graph.entities[eid].setdefault(cid, {"names": {}, "types": {}, "sentence": mention.sentence})  # type: ignore[assignment]
        part["names"][mention.surface] = part["names"].get(mention.surface, 0) + 1
        part["types"][mention.type] = part["types"].get(mention.type, 0) + 1
        mention_counts[eid] += 1
    for eid, count in mention_counts.items():
        mentions: MentionContribution = {"count": count + (TOPIC_BONUS if eid == title_entity else 0)}
        graph.edge(cid, EdgeType.MENTIONS, eid).contrib[cid] = cast(dict[str, Any], mentions)
    for relation in extraction.relations:
        source, target = entity_id(relation.source_key), entity_id(relation.target_key)
        if source == target or source not in graph.entities or target not in graph.entities:
            continue
        first, second = sorted((source, target))
        related: RelatedContribution = graph.edge(first, EdgeType.RELATED_TO, second).contrib.setdefault(cid, {"keywords": []})  # type: ignore[assignment]
        related["keywords"] += [k for k in relation.keywords if k not in related["keywords"]]
        if not relation.keywords:
            # bare co-occurrence links the two entities (an edge) but states nothing worth a searchable node
            continue
        rid = relation_id(source, target)
        forward = first == source
        graph.relation_ends[rid] = (first, second)
        stated: RelationContribution | None = graph.relations[rid].get(cid)  # type: ignore[assignment]
        if stated is None:
            statement: RelationContribution = {
                "keywords": list(relation.keywords),
                "first_name": relation.source_surface if forward else relation.target_surface,
                "second_name": relation.target_surface if forward else relation.source_surface,
                "kind": relation.kind, "sentence": relation.sentence, "direction": 1 if forward else -1,
            }
            if relation.strength is not None:
                statement["strength"] = relation.strength
            graph.relations[rid][cid] = statement  # type: ignore[assignment]
        else:
            stated["keywords"] += [k for k in relation.keywords if k not in stated["keywords"]]
        graph.edge(cid, EdgeType.EVIDENCES, rid).contrib[cid] = {}
        graph.edge(rid, EdgeType.CONNECTS, first).contrib[cid] = {}
        graph.edge(rid, EdgeType.CONNECTS, second).contrib[cid] = {}


def merge_with_stored(graph: BatchGraph, stored_nodes: Mapping[str, Node], stored_edges: Mapping[EdgeKey, Edge], derivation: Derivation) -> MergedBatch:
    """The batch's elements, each summarising its stored contributions and the batch's, properties derived again.
    ``stored_*`` need only their summaries: an element carries the batch's contributions alone, which the store adds
    to those it has."""
    nodes = dict(graph.nodes)
    to_embed: list[Node] = [n for n in nodes.values() if n.type == NodeType.CHUNK]
    for type_, contributions in ((NodeType.ENTITY, graph.entities), (NodeType.RELATION, graph.relations)):
        for node_id, contrib in contributions.items():
            previous = stored_nodes.get(node_id)
            added = summarize(type_, contrib)
            if previous is not None:
                node = Node(node_id, type_, dict(previous.props), contrib, merge(previous.summary, added))
            else:
                first, second = graph.relation_ends.get(node_id, ("", ""))
                node = Node(node_id, type_, {"ends": [first, second]} if type_ == NodeType.RELATION else {}, contrib, added)
            derivation.derive(node)
            if previous is None or embedding_text(previous) != embedding_text(node):
                to_embed.append(node)
            nodes[node_id] = node
    edges = dict(graph.edges)
    for key, edge in edges.items():
        added = summarize(None, edge.contrib)
        edge.summary = merge(stored_edges[key].summary, added) if key in stored_edges else added
        derive_edge(edge)
    return MergedBatch(nodes, edges, to_embed, set(graph.entities), set(graph.relations))


def without_chunks(nodes: Iterable[Node], edges: Iterable[Edge], gone: set[str], removed: set[str], derivation: Derivation) -> Removal:
    """``nodes`` and ``edges`` (those the ``gone`` chunks support, with all their contributions) without those
    chunks' contributions. An element left with none is deleted; so is every edge touching a deleted node or one of
    ``removed`` (the chunks and their document)."""
    updated: list[Node] = []
    deleted: list[Node] = []
    to_embed: list[Node] = []
    for node in nodes:
        contrib = {c: part for c, part in node.contrib.items() if c not in gone}
        if not contrib:
            deleted.append(node)
            continue
        fresh = Node(node.id, node.type, dict(node.props), contrib, summarize(node.type, contrib))
        derivation.derive(fresh)
        updated.append(fresh)
        if embedding_text(fresh) != embedding_text(node):
            to_embed.append(fresh)
    deleted_ids = {n.id for n in deleted} | removed
    kept: list[Edge] = []
    dropped: list[EdgeKey] = []
    for edge in edges:
        if edge.source in deleted_ids or edge.target in deleted_ids:
            continue
        contrib = {c: part for c, part in edge.contrib.items() if c not in gone}
        if contrib:
            fresh_edge = Edge(edge.source, edge.type, edge.target, {}, contrib, summarize(None, contrib))
            derive_edge(fresh_edge)
            kept.append(fresh_edge)
        else:
            dropped.append(edge.key)
    return Removal(updated, deleted, kept, dropped, to_embed)


def with_surnames_resolved(extractions: list[ChunkExtraction]) -> list[ChunkExtraction]:
    """The document's extractions with lone surnames resolved to the one full name they stand for (per document,
    so the result does not depend on what else is indexed, and delete stays exact)."""
    aliases = surname_aliases([(m.key, m.type) for e in extractions for m in e.entities])
    if not aliases:
        return extractions
    return [ChunkExtraction(
        e.chunk_id,
        [replace(m, key=aliases.get(m.key, m.key)) for m in e.entities],
        [replace(r, source_key=aliases.get(r.source_key, r.source_key), target_key=aliases.get(r.target_key, r.target_key)) for r in e.relations],
        e.problems,
    ) for e in extractions]
