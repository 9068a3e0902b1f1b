"""What a client can do with one workspace, whatever protocol it speaks.

The REST routes and the MCP tools both call these functions, so submitting, following and deleting a document,
querying and reading the graph behave the same over either. They take the workspace's parts (its Workspace and job
queue) and raise the domain's exceptions: DocumentError and QueryError for the caller's mistakes, NotFound for an id
the workspace does not know; each transport turns those into its own errors (a 4xx, an MCP tool error).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from graphdex.api.jobs import JobQueue
from graphdex.api.replica import not_the_writer
from graphdex.api.schemas import MAX_DOCUMENTS_PER_REQUEST, DocumentIn, QueryHit, QueryIn
from graphdex.api.workspace import Workspace
from graphdex.common.errors import NotFound
from graphdex.common.ids import content_hash, document_id
from graphdex.graph.model import EdgeKey, EdgeType, Node, NodeType
from graphdex.ingest.documents import DocumentError, SourceDocument, document_from_record
from graphdex.query.results import ChunkHit, QueryResult

MAX_SUBGRAPH_NODES = 500


# documents -----------------------------------------------------------------------------------------------------------

def documents_from_json(items: list[DocumentIn]) -> list[SourceDocument]:
    """Documents sent as JSON, held to the limits every way in shares (ingest/documents.py)."""
    return [document_from_record(item.model_dump(), _source_of(item)) for item in items]


def _source_of(doc: DocumentIn) -> str:
    """A document sent without a source is known by its content: sending it again changes nothing."""
    return doc.source or f"api:{content_hash(doc.title + chr(0) + doc.text)[:16]}"


def submit_documents(jobs: JobQueue, documents: list[SourceDocument]) -> list[dict[str, Any]]:
    """Queues documents for the workspace's ingestion worker; their ids and statuses, in the order given."""
    if not documents:
        raise DocumentError("no documents in the request")
    if len(documents) > MAX_DOCUMENTS_PER_REQUEST:
        raise DocumentError(f"{len(documents):,} documents in one request; send at most {MAX_DOCUMENTS_PER_REQUEST:,}")
    submitted = jobs.submit([(document_id(d.source), d) for d in documents])
    return [{"id": j.id, "status": j.status, "source": j.source, "title": j.title} for j in submitted]


def document_status(jobs: JobQueue | None, ws: Workspace, doc_id: str) -> dict[str, Any]:
    """A submitted document's status, or a document indexed outside the service (`graphdex ingest`) as done. Without
    the queue (a query replica that forwards nothing) an indexed document is still `done`; any other status is the
    writer's to tell."""
    job = jobs.get(doc_id) if jobs is not None else None
    if job is not None:
        return job.to_dict()
    node = _stored_document(ws, doc_id)
    if node is None:
        if jobs is None:
            raise not_the_writer(ws, f"{doc_id!r} is not indexed; whether it is pending, failed or unknown is known")
        raise NotFound(f"no document {doc_id!r}")
    return {"id": doc_id, "status": "done", "source": node.props.get("source"), "title": node.props.get("title"),
            "chunks": node.props.get("chunk_count"), "words": node.props.get("words")}


def delete_document(jobs: JobQueue, ws: Workspace, doc_id: str) -> dict[str, Any]:
    """Marks the document for deletion (status `deleting`, with the status it ``was``); the worker carries it out
    after its current batch, so a caller never waits for an ingestion batch."""
    marked = jobs.request_delete(doc_id)
    if marked is None:
        node = _stored_document(ws, doc_id)
        if node is None:
            raise NotFound(f"no document {doc_id!r}")
        marked = jobs.request_delete(doc_id, indexed_as=(str(node.props.get("source", "")), str(node.props.get("title", ""))))
        assert marked is not None  # indexed_as always marks
    job, was = marked
    return {**job.to_dict(), "was": was}


def _stored_document(ws: Workspace, doc_id: str) -> Node | None:
    with ws.guard.read():
        node = ws.store.get_nodes([doc_id]).get(doc_id)
    return node if node is not None and node.type == NodeType.DOCUMENT else None


# queries -------------------------------------------------------------------------------------------------------------

def retrieve(request: QueryIn, ws: Workspace, top_k: int, slots: threading.BoundedSemaphore) -> tuple[QueryResult, list[ChunkHit]]:
    """The ranked chunks for a query, within its token budget. Retrieval is CPU-bound: it takes one of the service's
    query slots, and gives it back before anything slow on the network (writing an answer) starts."""
    with slots:
        result = ws.engine.retrieve(request.query, request.mode, request.chunks_wanted(top_k))
    hits = result.chunks
    if request.max_context_tokens is not None:
        hits = _within_budget(ws, hits, request.max_context_tokens)
    return result, hits


def _within_budget(ws: Workspace, hits: list[ChunkHit], budget: int) -> list[ChunkHit]:
    """The best hits whose tokens, counted as the chunker counts them, fit the budget."""
    sizes = ws.token_counter()([h.text for h in hits])
    kept, used = [], 0
    for hit, size in zip(hits, sizes):
        if used + size > budget:
            break
        kept.append(hit)
        used += size
    return kept


def query_hits(hits: list[ChunkHit]) -> list[QueryHit]:
    """Hits with their citations (document, chunk, section and pages when known) as the API shows them."""
    return [QueryHit(text=h.text, doc_id=h.doc_id, title=h.title, chunk_id=h.chunk_id, score=h.score, source=h.source,
                     section=h.section, page=h.page, page_end=h.page_end) for h in hits]


# the graph -----------------------------------------------------------------------------------------------------------
# Every read holds the read side of the workspace's lock, so an answer never mixes the graph before and after an
# ingestion batch.

def graph_stats(ws: Workspace, queue_counts: dict[str, int] | None) -> dict[str, Any]:
    """Counts per node type, edge type and vector index, and the queue's counts per status (None on a replica)."""
    with ws.guard.read():
        return {**ws.stats(), "queue": queue_counts}


def find_entities(ws: Workspace, text: str, limit: int) -> list[dict[str, Any]]:
    """Entities whose name or alias contains the text."""
    with ws.guard.read():
        found = ws.store.find_entities(text, limit)
    return [{**node_summary(n), "entity_type": n.props.get("type"), "support": n.props.get("support")} for n in found]


def entity_neighbourhood(ws: Workspace, entity_id: str, limit: int) -> dict[str, Any]:
    """An entity with its properties and its ``limit`` strongest neighbours (by the weight of their link)."""
    with ws.guard.read():
        node = ws.store.get_nodes([entity_id]).get(entity_id)
        if node is None or node.type != NodeType.ENTITY:
            raise NotFound(f"no entity {entity_id!r}")
        edges = sorted(ws.store.edges_of(entity_id, [EdgeType.RELATED_TO]), key=lambda e: -float(e.props.get("weight", 1)))[:limit]
        others = ws.store.get_nodes(e.target if e.source == entity_id else e.source for e in edges)
    neighbours = []
    for edge in edges:
        other = others.get(edge.target if edge.source == entity_id else edge.source)
        if other is not None:
            neighbours.append({**node_summary(other), "keywords": edge.props.get("keywords", []), "weight": edge.props.get("weight", 1)})
    return {"entity": {"id": node.id, **node.props}, "neighbours": neighbours}


def subgraph(ws: Workspace, entity_id: str, depth: int, limit: int) -> dict[str, Any]:
    """The entities within ``depth`` links of an entity and the links between them, at most ``limit`` nodes."""
    # breadth first, strongest relations first, until `limit` nodes: a neighbourhood can run into thousands
    with ws.guard.read():
        store = ws.store
        start = store.get_nodes([entity_id]).get(entity_id)
        if start is None or start.type != NodeType.ENTITY:
            raise NotFound(f"no entity {entity_id!r}")
        seen = {entity_id: 0}
        edges: dict[EdgeKey, dict[str, Any]] = {}
        frontier = deque([entity_id])
        for level in range(1, depth + 1):
            by_node = store.edges_of_many(list(frontier), [EdgeType.RELATED_TO], contributions=False)
            frontier = deque()
            for node_id, node_edges in by_node.items():
                for edge in sorted(node_edges, key=lambda e: -float(e.props.get("weight", 1))):
                    other = edge.target if edge.source == node_id else edge.source
                    if other not in seen and len(seen) < limit:
                        seen[other] = level
                        frontier.append(other)
                    if other in seen:
                        edges[edge.key] = {"source": edge.source, "target": edge.target, "type": str(edge.type),
                                           "keywords": edge.props.get("keywords", []), "weight": edge.props.get("weight", 1)}
        nodes = store.get_nodes(seen)
    return {"nodes": [{**node_summary(nodes[i]), "depth": d} for i, d in seen.items() if i in nodes], "edges": list(edges.values())}


def node_summary(node: Node) -> dict[str, Any]:
    """Id, type and the most readable name a node has."""
    props = node.props
    name = props.get("name") or props.get("label") or props.get("title") or node.id
    return {"id": node.id, "type": str(node.type), "name": name}
