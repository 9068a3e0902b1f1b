"""The indexer: merges documents into the graph and vector indexes, replaces changed ones, deletes exactly.

Order of a write: extract -> merge contributions with what is stored -> derive properties -> embed only the nodes
whose text changed -> add vectors -> one atomic graph write. Vectors are saved as one generation at the end of each
operation (and every few thousand chunks); after a crash ``repair`` makes the vectors match the graph again.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from graphdex.common.embedder import Embedder
from graphdex.common.llm import Usage
from graphdex.common.ids import chunk_id, content_hash, document_id, entity_id, relation_id
from graphdex.graph.model import SEARCHABLE_TYPES, Edge, EdgeKey, EdgeType, Node, NodeType
from graphdex.graph.store import GraphStore
from graphdex.graph.vector_index import VectorIndexSet
from graphdex.ingest.chunking import Chunk, Chunker
from graphdex.ingest.communities import refresh_communities
from graphdex.ingest.derive import Summarizer, derive, derive_edge, embedding_text
from graphdex.ingest.documents import SourceDocument
from graphdex.ingest.extraction import ChunkExtraction, ChunkInput, Extractor
from graphdex.common.resolution import TITLE_DISAMBIGUATION, find_acronyms, normalize_key, surname_aliases

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

WRITE_BATCH_CHUNKS = 256
TOPIC_BONUS = 3
SAVE_EVERY_CHUNKS = 5000


@dataclass
class IngestReport:
    documents_added: int = 0
    documents_replaced: int = 0
    documents_unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    words: int = 0
    entities: int = 0  # distinct entities the new documents mention
    relations: int = 0  # distinct relations they support
    seconds: float = 0.0
    problem_chunks: int = 0  # chunks whose extraction went partly wrong (marked on the chunk, see its extraction_problems)
    llm_usage: dict[str, int] = field(default_factory=dict)  # model calls and tokens spent by this ingest
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    document_ids: list[str] = field(default_factory=list)


@dataclass
class DeleteReport:
    document_id: str
    chunks: int
    nodes_deleted: int
    nodes_updated: int


@dataclass
class _Prepared:
    doc: SourceDocument
    doc_id: str
    hash: str
    chunks: list[Chunk]


class Indexer:
    """The single writer of a graph store and its vector indexes."""

    def __init__(self, store: GraphStore, vectors: VectorIndexSet, embedder: Embedder, extractor: Extractor, chunker: Chunker,
                 community_resolution: float = 1.0, community_min_size: int = 3,
                 exclusive: Callable[[], AbstractContextManager[None]] = nullcontext,
                 summarize: Summarizer | None = None, summary_threshold: int = 6, llm_usage: Usage | None = None) -> None:
        """``exclusive`` guards each mutation of the store and vectors (the write side of the service's
        readers-writer lock); extraction and embedding run outside it. ``summarize`` (a model) condenses the
        descriptions of elements that gathered more than ``summary_threshold`` of them."""
        self.store = store
        self.vectors = vectors
        self.embedder = embedder
        self.extractor = extractor
        self.chunker = chunker
        self.community_resolution = community_resolution
        self.community_min_size = community_min_size
        self.exclusive = exclusive
        self.summarize = summarize
        self.summary_threshold = summary_threshold
        self.llm_usage = llm_usage
        self._overlay: tuple[dict[str, Node], dict[EdgeKey, Edge]] = ({}, {})  # the batch being written, see ingest

    # ingest -----------------------------------------------------------------------------------------------------

    def ingest(self, documents: Iterable[SourceDocument], progress: Progress | None = None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        usage_before = self.llm_usage.snapshot() if self.llm_usage else {}
        prepared = self._prepare(documents, report)
        total_chunks = sum(len(p.chunks) for p in prepared)
        if progress:
            progress(0, total_chunks)
        touched_entities: set[str] = set()
        touched_relations: set[str] = set()
        done = since_save = 0
        # batch i is written (store + vectors) on a second thread while batch i+1 is merged and embedded here;
        # the merge reads batch i's nodes and edges from the in-flight overlay, so it never sees a stale store
        in_flight: Future | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphdex-write") as writer:
            for batch in self._extracted_batches(prepared, report):
                entities, relations, nodes, edges, vectors = self._merge_batch(batch, report)
                if in_flight is not None:
                    self._timed(report, "write_wait", in_flight.result)
                self._overlay = (nodes, edges)
                in_flight = writer.submit(self._timed, report, "store_write", lambda n=nodes, e=edges, v=vectors: self._apply(n, e, v))
                touched_entities |= entities
                touched_relations |= relations
                written = sum(len(p.chunks) for p, _ in batch)
                done += written
                since_save += written
                if since_save >= SAVE_EVERY_CHUNKS:
                    in_flight.result()
                    self._timed(report, "vector_save", self.vectors.save)
                    since_save = 0
                if progress:
                    progress(done, total_chunks)
            if in_flight is not None:
                self._timed(report, "write_wait", in_flight.result)
            self._overlay = ({}, {})
        if prepared:
            self._timed(report, "communities", self._refresh_communities)
            self._timed(report, "vector_save", self.vectors.save)
        report.entities = len(touched_entities)
        report.relations = len(touched_relations)
        report.seconds = time.perf_counter() - started
        if self.llm_usage:
            report.llm_usage = {k: v - usage_before[k] for k, v in self.llm_usage.snapshot().items()}
        return report

    @staticmethod
    def _timed(report: IngestReport, stage: str, work: Callable[[], object]) -> object:
        began = time.perf_counter()
        try:
            return work()
        finally:
            report.stage_seconds[stage] += time.perf_counter() - began

    def _prepare(self, documents: Iterable[SourceDocument], report: IngestReport) -> list[_Prepared]:
        latest: dict[str, SourceDocument] = {}
        for doc in documents:
            latest[doc.source] = doc  # the same source twice in one call: the last version wins
        prepared: list[_Prepared] = []
        ids = {source: document_id(source) for source in latest}
        stored = self.store.get_nodes(ids.values())
        for source, doc in latest.items():
            doc_id = ids[source]
            if not doc.text.strip():
                report.failed.append((source, "document has no text"))
                continue
            digest = content_hash(doc.title + "\x00" + doc.text)
            previous = stored.get(doc_id)
            if previous is not None and previous.props.get("content_hash") == digest:
                report.documents_unchanged += 1
                report.document_ids.append(doc_id)
                continue
            chunks = self._timed(report, "chunking", lambda: self.chunker.split(doc.text))
            if not chunks:
                report.failed.append((source, "document has no text"))
                continue
            if previous is not None:
                self._remove_document(doc_id)
                report.documents_replaced += 1
            else:
                report.documents_added += 1
            report.document_ids.append(doc_id)
            prepared.append(_Prepared(doc, doc_id, digest, chunks))
        return prepared

    def _extracted_batches(self, prepared: list[_Prepared], report: IngestReport) -> Iterator[list[tuple[_Prepared, list[ChunkExtraction]]]]:
        """Documents with their extractions, grouped into write batches, streamed as extraction proceeds."""

        def inputs() -> Iterator[ChunkInput]:
            for item in prepared:
                acronyms = find_acronyms(item.doc.text)
                for chunk in item.chunks:
                    yield ChunkInput(chunk_id(item.doc_id, chunk.index), chunk.text, acronyms, item.doc.title, chunk.index == 0)

        stream = self.extractor.extract(inputs())
        batch: list[tuple[_Prepared, list[ChunkExtraction]]] = []
        batch_chunks = 0
        for item in prepared:
            began = time.perf_counter()
            extractions = [next(stream) for _ in item.chunks]
            report.stage_seconds["extraction_wait"] += time.perf_counter() - began
            batch.append((item, extractions))
            batch_chunks += len(item.chunks)
            if batch_chunks >= WRITE_BATCH_CHUNKS:
                yield batch
                batch, batch_chunks = [], 0
        if batch:
            yield batch

    def _apply(self, nodes: dict[str, Node], edges: dict[EdgeKey, Edge], vectors: dict) -> None:
        with self.exclusive():
            self._add_vectors(vectors)
            self.store.write(list(nodes.values()), list(edges.values()))

    def _stored_nodes(self, ids: list[str]) -> dict[str, Node]:
        overlay = self._overlay[0]
        found = self.store.get_nodes(i for i in ids if i not in overlay)
        return {**found, **{i: overlay[i] for i in ids if i in overlay}}

    def _stored_edges(self, keys: list[EdgeKey]) -> dict[EdgeKey, Edge]:
        overlay = self._overlay[1]
        found = self.store.get_edges(k for k in keys if k not in overlay)
        return {**found, **{k: overlay[k] for k in keys if k in overlay}}

    def _merge_batch(self, batch: list[tuple[_Prepared, list[ChunkExtraction]]], report: IngestReport):
        """The batch's nodes and edges merged with what is stored, and the vectors of those whose text changed."""
        nodes: dict[str, Node] = {}
        edges: dict[EdgeKey, Edge] = {}
        entity_contrib: dict[str, dict[str, dict]] = defaultdict(dict)
        relation_contrib: dict[str, dict[str, dict]] = defaultdict(dict)
        relation_ends: dict[str, tuple[str, str]] = {}
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")

        def add_edge(source: str, type_: EdgeType, target: str, chunk: str | None, part: dict | None = None) -> Edge:
            key = (source, str(type_), target)
            edge = edges.setdefault(key, Edge(source, type_, target))
            if chunk is not None:
                edge.contrib[chunk] = part or {}
            return edge

        for item, extractions in batch:
            doc, doc_id = item.doc, item.doc_id
            words = len(doc.text.split())
            report.words += words
            report.chunks += len(item.chunks)
            nodes[doc_id] = Node(doc_id, NodeType.DOCUMENT, {
                "source": doc.source, "title": doc.title, "content_hash": item.hash, "metadata": doc.metadata,
                "chunk_count": len(item.chunks), "words": words, "ingested_at": now,
            })
            title_key = entity_id(normalize_key(TITLE_DISAMBIGUATION.sub("", doc.title))) if doc.title else ""
            extractions = _with_surnames_resolved(extractions)
            for chunk, extraction in zip(item.chunks, extractions):
                cid = chunk_id(doc_id, chunk.index)
                nodes[cid] = Node(cid, NodeType.CHUNK, {
                    "text": chunk.text, "title": doc.title, "document_id": doc_id, "index": chunk.index,
                    "start": chunk.start, "end": chunk.end, "tokens": chunk.tokens,
                    **({"extraction_problems": extraction.problems} if extraction.problems else {}),
                })
                report.problem_chunks += bool(extraction.problems)
                add_edge(doc_id, EdgeType.HAS_CHUNK, cid, None)
                edges[(doc_id, str(EdgeType.HAS_CHUNK), cid)].props = {"index": chunk.index}
                self._collect(cid, extraction, entity_contrib, relation_contrib, relation_ends, add_edge, title_key)

        stored = self._stored_nodes(list(entity_contrib) + list(relation_contrib))
        to_embed: list[Node] = [n for n in nodes.values() if n.type == NodeType.CHUNK]
        for type_, contributions in ((NodeType.ENTITY, entity_contrib), (NodeType.RELATION, relation_contrib)):
            for node_id, contrib in contributions.items():
                previous = stored.get(node_id)
                if previous is not None:
                    node = Node(node_id, type_, dict(previous.props), {**previous.contrib, **contrib})
                else:
                    source, target = relation_ends.get(node_id, ("", ""))
                    node = Node(node_id, type_, {"ends": [source, target]} if type_ == NodeType.RELATION else {}, contrib)
                derive(node, self.summarize, self.summary_threshold)
                if previous is None or embedding_text(previous) != embedding_text(node):
                    to_embed.append(node)
                nodes[node_id] = node
        stored_edges = self._stored_edges([k for k, e in edges.items() if e.type in (EdgeType.RELATED_TO, EdgeType.CONNECTS)])
        for key, edge in edges.items():
            if key in stored_edges:
                edge.contrib = {**stored_edges[key].contrib, **edge.contrib}
            derive_edge(edge)
        vectors = self._timed(report, "embedding", lambda: self._vectors(to_embed))
        return set(entity_contrib), set(relation_contrib), nodes, edges, vectors

    @staticmethod
    def _collect(cid: str, extraction: ChunkExtraction, entity_contrib: dict, relation_contrib: dict, relation_ends: dict, add_edge: Callable, title_entity: str) -> None:
        mention_counts: Counter = Counter()
        for mention in extraction.entities:
            eid = entity_id(mention.key)
            part = entity_contrib[eid].setdefault(cid, {"n": {}, "t": {}, "s": mention.sentence})
            part["n"][mention.surface] = part["n"].get(mention.surface, 0) + 1
            part["t"][mention.type] = part["t"].get(mention.type, 0) + 1
            mention_counts[eid] += 1
        for eid, count in mention_counts.items():
            # a document's own subject is mentioned more strongly than anything it merely names in passing
            add_edge(cid, EdgeType.MENTIONS, eid, cid, {"c": count + (TOPIC_BONUS if eid == title_entity else 0)})
        for relation in extraction.relations:
            source, target = entity_id(relation.source_key), entity_id(relation.target_key)
            if source == target or source not in entity_contrib or target not in entity_contrib:
                continue
            first, second = sorted((source, target))
            related = add_edge(first, EdgeType.RELATED_TO, second, None)
            part = related.contrib.setdefault(cid, {"k": []})
            part["k"] += [k for k in relation.keywords if k not in part["k"]]
            if not relation.keywords:
                # bare co-occurrence links the two entities (an edge) but states nothing worth a searchable node
                continue
            rid = relation_id(source, target)
            surfaces = (relation.source_surface, relation.target_surface) if first == source else (relation.target_surface, relation.source_surface)
            relation_ends[rid] = (first, second)
            stated = relation_contrib[rid].get(cid)
            if stated is None:
                relation_contrib[rid][cid] = {"k": list(relation.keywords), "a": surfaces[0], "b": surfaces[1], "kind": relation.kind,
                                              "s": relation.sentence, "d": 1 if first == source else -1,
                                              **({"w": relation.strength} if relation.strength is not None else {})}
            else:
                stated["k"] += [k for k in relation.keywords if k not in stated["k"]]
            add_edge(cid, EdgeType.EVIDENCES, rid, cid)
            add_edge(rid, EdgeType.CONNECTS, first, cid)
            add_edge(rid, EdgeType.CONNECTS, second, cid)

    def _vectors(self, nodes: list[Node]) -> dict[NodeType, tuple[list[str], np.ndarray]]:
        """Embeddings of the nodes, by node type (the slow part, done outside the exclusive section)."""
        if not nodes:
            return {}
        vectors = self.embedder.embed([embedding_text(n) for n in nodes])
        by_type: dict[NodeType, list[int]] = defaultdict(list)
        for row, node in enumerate(nodes):
            by_type[node.type].append(row)
        return {type_: ([nodes[r].id for r in rows], vectors[rows]) for type_, rows in by_type.items()}

    def _add_vectors(self, vectors: dict[NodeType, tuple[list[str], np.ndarray]]) -> None:
        for type_, (ids, matrix) in vectors.items():
            self.vectors[type_].add(ids, matrix)

    # delete -----------------------------------------------------------------------------------------------------

    def _refresh_communities(self) -> int:
        return refresh_communities(self.store, self.vectors, self.embedder, self.community_resolution, self.community_min_size, self.exclusive)

    def resolve_document(self, ref: str) -> str | None:
        """A document id from an id or the source it was ingested from (a path is also tried absolute)."""
        candidates = [ref, document_id(ref)]
        try:
            candidates.append(document_id(str(Path(ref).expanduser().resolve())))
        except (OSError, RuntimeError):
            pass
        for candidate in candidates:
            node = self.store.get_nodes([candidate]).get(candidate)
            if node is not None and node.type == NodeType.DOCUMENT:
                return candidate
        return None

    def delete_document(self, ref: str) -> DeleteReport:
        doc_id = self.resolve_document(ref)
        if doc_id is None:
            raise KeyError(f"no document with id or source {ref!r}")
        report = self._remove_document(doc_id)
        self._refresh_communities()
        self.vectors.save()
        return report

    def _remove_document(self, doc_id: str) -> DeleteReport:
        chunk_ids = sorted(e.target for e in self.store.edges_of(doc_id, [EdgeType.HAS_CHUNK]) if e.source == doc_id)
        gone = set(chunk_ids)
        node_ids, edge_keys = self.store.supported_by(chunk_ids)
        updated: list[Node] = []
        deleted: list[Node] = []
        to_embed: list[Node] = []
        for node in self.store.get_nodes(node_ids).values():
            contrib = {c: part for c, part in node.contrib.items() if c not in gone}
            if not contrib:
                deleted.append(node)
                continue
            fresh = Node(node.id, node.type, dict(node.props), contrib)
            derive(fresh, self.summarize, self.summary_threshold)
            updated.append(fresh)
            if embedding_text(fresh) != embedding_text(node):
                to_embed.append(fresh)
        deleted_ids = {n.id for n in deleted} | gone | {doc_id}
        kept_edges: list[Edge] = []
        dropped_edges: list[EdgeKey] = []
        for key, edge in self.store.get_edges(edge_keys).items():
            if edge.source in deleted_ids or edge.target in deleted_ids:
                continue
            contrib = {c: part for c, part in edge.contrib.items() if c not in gone}
            if contrib:
                fresh_edge = Edge(edge.source, edge.type, edge.target, {}, contrib)
                derive_edge(fresh_edge)
                kept_edges.append(fresh_edge)
            else:
                dropped_edges.append(key)
        vectors = self._vectors(to_embed)
        with self.exclusive():
            self._add_vectors(vectors)
            self.store.write(updated, kept_edges, delete_nodes=sorted(deleted_ids), delete_edges=dropped_edges)
            self.vectors[NodeType.CHUNK].delete(chunk_ids)
            for node in deleted:
                if node.type in SEARCHABLE_TYPES:
                    self.vectors[node.type].delete([node.id])
        return DeleteReport(doc_id, len(chunk_ids), len(deleted_ids), len(updated))

    # recovery ---------------------------------------------------------------------------------------------------

    def repair(self) -> int:
        """Make every vector index hold exactly the vectors of the stored nodes of its type; returns fixes made."""
        fixes = 0
        for type_ in SEARCHABLE_TYPES:
            stored = self.store.node_ids(type_)
            indexed = self.vectors[type_].ids()
            extra = indexed - stored
            missing = sorted(stored - indexed)
            vectors = self._vectors(list(self.store.get_nodes(missing).values())) if missing else {}
            with self.exclusive():
                if extra:
                    self.vectors[type_].delete(extra)
                self._add_vectors(vectors)
            fixes += len(extra) + len(missing)
        if fixes:
            log.warning("repaired %d vector entries that did not match the graph (an earlier run was interrupted)", fixes)
            self.vectors.save()
        return fixes

    def close(self) -> None:
        self.extractor.close()


def _with_surnames_resolved(extractions: list[ChunkExtraction]) -> list[ChunkExtraction]:
    """The document's extractions with lone surnames resolved to the one full name they stand for (per document,
    so the result does not depend on what else is indexed, and delete stays exact)."""
    aliases = surname_aliases([(m.key, m.type) for e in extractions for m in e.entities])
    if not aliases:
        return extractions
    return [ChunkExtraction(
        e.chunk_id,
        [replace(m, key=aliases.get(m.key, m.key)) for m in e.entities],
        [replace(r, source_key=aliases.get(r.source_key, r.source_key), target_key=aliases.get(r.target_key, r.target_key)) for r in e.relations],
    ) for e in extractions]
