"""What a client can do with one workspace, whatever protocol it speaks.

The REST routes and the MCP tools both call these functions, so submitting, following and deleting a document and
querying behave the same over either: what involves the service's job queue or its query slots, on top of the
workspace's own operations (api/index.py). They raise the domain's exceptions: DocumentError and QueryError for the
caller's mistakes, NotFound for an id the workspace does not know; each transport turns those into its own errors
(a 4xx, an MCP tool error).
"""

from __future__ import annotations

import threading
from typing import Any

from graphdex.api.index import Index
from graphdex.api.jobs import JobQueue
from graphdex.api.replica import not_the_writer
from graphdex.api.schemas import MAX_DOCUMENTS_PER_REQUEST, DocumentIn, QueryHit, QueryIn
from graphdex.common.errors import NotFound
from graphdex.common.ids import content_hash, document_id
from graphdex.ingest.documents import DocumentError, SourceDocument, document_from_record
from graphdex.query.results import ChunkHit, QueryResult

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


def document_status(jobs: JobQueue | None, index: Index, doc_id: str) -> dict[str, Any]:
    """A submitted document's status, or a document indexed outside the service (`graphdex ingest`) as done. Without
    the queue (a query replica that forwards nothing) an indexed document is still `done`; any other status is the
    writer's to tell."""
    job = jobs.get(doc_id) if jobs is not None else None
    if job is not None:
        return job.to_dict()
    node = index.document(doc_id)
    if node is None:
        if jobs is None:
            raise not_the_writer(index.workspace, f"{doc_id!r} is not indexed; whether it is pending, failed or unknown is known")
        raise NotFound(f"no document {doc_id!r}")
    return {"id": doc_id, "status": "done", "source": node.props.get("source"), "title": node.props.get("title"),
            "chunks": node.props.get("chunk_count"), "words": node.props.get("words")}


def delete_document(jobs: JobQueue, index: Index, doc_id: str) -> dict[str, Any]:
    """Marks the document for deletion (status `deleting`, with the status it ``was``); the worker carries it out
    after its current batch, so a caller never waits for an ingestion batch."""
    marked = jobs.request_delete(doc_id)
    if marked is None:
        node = index.document(doc_id)
        if node is None:
            raise NotFound(f"no document {doc_id!r}")
        marked = jobs.request_delete(doc_id, indexed_as=(str(node.props.get("source", "")), str(node.props.get("title", ""))))
        assert marked is not None  # indexed_as always marks
    job, was = marked
    return {**job.to_dict(), "was": was}


# queries -------------------------------------------------------------------------------------------------------------

def retrieve(request: QueryIn, index: Index, top_k: int, slots: threading.BoundedSemaphore) -> tuple[QueryResult, list[ChunkHit]]:
    """The ranked chunks for a query, within its token budget. Retrieval is CPU-bound: it takes one of the service's
    query slots, and gives it back before anything slow on the network (writing an answer) starts."""
    with slots:
        result = index.retrieve(request.query, request.mode, request.chunks_wanted(top_k))
    hits = result.chunks
    if request.max_context_tokens is not None:
        hits = index.within_budget(hits, request.max_context_tokens)
    return result, hits


def query_hits(hits: list[ChunkHit], via: dict[str, list[dict[str, Any]]] | None = None) -> list[QueryHit]:
    """Hits with their citations (document, chunk, section and pages when known) as the API shows them, and the graph
    nodes that led to each when ``via`` (Index.passage_links) is given."""
    return [QueryHit(text=h.text, doc_id=h.doc_id, title=h.title, chunk_id=h.chunk_id, score=h.score, source=h.source,
                     section=h.section, page=h.page, page_end=h.page_end, via=(via or {}).get(h.chunk_id, [])) for h in hits]


def graph_stats(index: Index, queue_counts: dict[str, int] | None) -> dict[str, Any]:
    """Counts per node type, edge type and vector index, and the queue's counts per status (None on a replica)."""
    return {**index.stats(), "queue": queue_counts}
