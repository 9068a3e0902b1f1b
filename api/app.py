"""The REST API: documents in (queued, indexed in the background), queries and graph browsing out.

Start it with `graphdex serve`. OpenAPI documentation is served at /docs. User mistakes get a 4xx with a message
(bad JSON, unsupported or binary files, unknown ids, oversized bodies); a 5xx means the service itself is in trouble
(the store unreachable), never the caller.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections import deque
from contextlib import ExitStack, asynccontextmanager
from typing import Any, Iterator, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.datastructures import UploadFile as StarletteUploadFile

from graphdex.api.jobs import JobQueue
from graphdex.api.service import IngestionService, ServiceBusy
from graphdex.api.workspace import Workspace
from graphdex.common.ids import content_hash, document_id
from graphdex.common.llm import LLMError, counting_usage
from graphdex.common.settings import Settings
from graphdex.graph.model import EdgeType, NodeType
from graphdex.graph.store import StoreError
from graphdex.ingest.documents import DocumentError, SourceDocument, document_from_record, load_upload
from graphdex.query.answer import citations_in
from graphdex.query.engine import QueryError

log = logging.getLogger(__name__)

MAX_DOCUMENTS_PER_REQUEST = 10_000
MAX_SUBGRAPH_NODES = 500


# request and response bodies -------------------------------------------------------------------------------------

class DocumentIn(BaseModel):
    title: str = Field("", max_length=1000)
    text: str = Field(..., min_length=1)
    source: str | None = Field(None, max_length=2000, description="Identifies the document across submissions: the same source with new text replaces it. Default: a hash of the title and text.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        if "\x00" in value:
            raise ValueError("text contains NUL characters (binary content?)")
        return value


class DocumentsIn(BaseModel):
    documents: list[DocumentIn] = Field(..., min_length=1, max_length=MAX_DOCUMENTS_PER_REQUEST)


class QueryIn(BaseModel):
    query: str = Field(..., min_length=1, max_length=4000)
    mode: Literal["naive", "local", "global", "hybrid", "graph"] = "graph"
    top_k: int = Field(10, ge=1, le=200)
    max_context_tokens: int | None = Field(None, ge=1, le=1_000_000, description="Stop adding chunks to the results once their tokens would pass this budget.")
    answer: bool | None = Field(None, description="Write an answer from the results (needs GRAPHDEX_LLM_MODEL); default: yes when a model is configured.")


class QueryHit(BaseModel):
    text: str
    doc_id: str
    title: str
    chunk_id: str
    score: float
    source: str


class CitationOut(BaseModel):
    number: int
    chunk_id: str
    doc_id: str
    title: str
    source: str


class QueryOut(BaseModel):
    query: str
    mode: str
    results: list[QueryHit]
    nodes: list[dict[str, Any]]
    keywords: dict[str, list[str]]
    answer: str | None
    citations: list[CitationOut] = Field(default_factory=list, description="The results the answer cites, by their [n] in the answer (n = rank in results).")
    llm_usage: dict[str, int] = Field(default_factory=dict, description="Model calls and tokens this query cost.")
    seconds: float


# plumbing ---------------------------------------------------------------------------------------------------------

class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuses bodies over the limit with 413, whether or not the client declared a Content-Length."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await _too_large(self.limit)(scope, receive, send)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body is larger than the limit of {limit:,} bytes (GRAPHDEX_MAX_REQUEST_BYTES)"}, status_code=413)


def _api_key_check(settings: Settings, for_reads: bool):
    def check(request: Request) -> None:
        if not settings.api_key or (for_reads and not settings.api_key_for_reads):
            return
        given = request.headers.get("x-api-key", "")
        if not secrets.compare_digest(given.encode(), settings.api_key.encode()):
            raise PermissionError("missing or wrong API key: send it in the X-API-Key header")

    return check


def _source_of(doc: DocumentIn) -> str:
    return doc.source or f"api:{content_hash(doc.title + chr(0) + doc.text)[:16]}"


def _node_summary(node) -> dict[str, Any]:
    props = node.props
    name = props.get("name") or props.get("label") or props.get("title") or node.id
    return {"id": node.id, "type": str(node.type), "name": name}


# the app ----------------------------------------------------------------------------------------------------------

def create_app(settings: Settings | None = None, workspace: Workspace | None = None) -> FastAPI:
    """The service over one index. ``workspace`` lets tests share loaded models; by default it is built from settings."""
    settings = settings or (workspace.settings if workspace else Settings())
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        with ExitStack() as stack:
            ws = workspace or Workspace(settings)
            stack.callback(ws.close)
            # the service is this index's only writer for as long as it runs
            stack.enter_context(ws.store.lock())
            jobs = JobQueue(ws.data_dir / "queue" / _queue_name(settings))
            stack.callback(jobs.close)
            service = IngestionService(ws, jobs, settings.ingest_batch_documents)
            ws.indexer  # load the extractor and repair the vectors before the first request
            service.start()
            stack.callback(service.stop)
            state.update(workspace=ws, jobs=jobs, service=service)
            yield
        state.clear()

    app = FastAPI(title="graphdex", version="0.1.0", lifespan=lifespan,
                  description="Graph-based knowledge index: submit documents, follow their indexing, query with citations, browse the graph.")
    app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes)
    write_access = Depends(_api_key_check(settings, for_reads=False))
    read_access = Depends(_api_key_check(settings, for_reads=True))

    @app.exception_handler(PermissionError)
    async def _unauthorised(request: Request, error: PermissionError):
        return JSONResponse({"detail": str(error)}, status_code=401)

    @app.exception_handler(DocumentError)
    async def _bad_document(request: Request, error: DocumentError):
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(QueryError)
    async def _bad_query(request: Request, error: QueryError):
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(ServiceBusy)
    async def _busy(request: Request, error: ServiceBusy):
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(LLMError)
    async def _model_down(request: Request, error: LLMError):
        return JSONResponse({"detail": f"the language model failed: {error}"}, status_code=502)

    @app.exception_handler(StoreError)
    async def _store_down(request: Request, error: StoreError):
        return JSONResponse({"detail": f"the graph store is unavailable: {error}"}, status_code=503)

    def ws() -> Workspace:
        return state["workspace"]

    # documents ------------------------------------------------------------------------------------------------

    @app.post("/documents", status_code=202, dependencies=[write_access], tags=["documents"],
              summary="Queue documents for indexing (JSON body, or multipart upload of .txt/.md/.json/.jsonl files)",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"$ref": "#/components/schemas/DocumentsIn"}},
                  "multipart/form-data": {"schema": {"type": "object", "required": ["files"], "properties": {
                      "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
              }}})
    async def submit_documents(request: Request) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form(max_files=1000, max_fields=100)
            uploads = [value for value in form.getlist("files") if isinstance(value, StarletteUploadFile)]
            if not uploads:
                raise DocumentError("multipart request without files: send them in form field `files`")
            documents: list[SourceDocument] = []
            for upload in uploads:
                documents += load_upload(upload.filename or "upload.txt", await upload.read())
        elif content_type.startswith("application/json") or not content_type:
            try:
                body = DocumentsIn.model_validate_json(await request.body())
            except ValidationError as error:
                raise RequestValidationError(error.errors(include_url=False, include_context=False)) from None
            documents = [document_from_record(d.model_dump(), _source_of(d)) for d in body.documents]
        else:
            return JSONResponse({"detail": f"unsupported content type {content_type!r}: send application/json or multipart/form-data"}, status_code=415)
        if not documents:
            raise DocumentError("no documents in the request")
        if len(documents) > MAX_DOCUMENTS_PER_REQUEST:
            raise DocumentError(f"{len(documents):,} documents in one request; send at most {MAX_DOCUMENTS_PER_REQUEST:,}")
        jobs = state["jobs"].submit([(document_id(d.source), d) for d in documents])
        return {"documents": [{"id": j.id, "status": j.status, "source": j.source, "title": j.title} for j in jobs]}

    @app.get("/documents", dependencies=[read_access], tags=["documents"], summary="Submitted documents, newest first")
    def list_documents(status: Literal["pending", "processing", "done", "failed"] | None = None,
                       limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0, le=1_000_000_000)) -> dict[str, Any]:
        jobs, total = state["jobs"].list(status, limit, offset)
        return {"documents": [j.to_dict() for j in jobs], "total": total, "limit": limit, "offset": offset, "counts": state["jobs"].counts()}

    @app.get("/documents/{doc_id}", dependencies=[read_access], tags=["documents"], summary="A document's indexing status")
    def get_document(doc_id: str) -> dict[str, Any]:
        job = state["jobs"].get(doc_id)
        if job is not None:
            return job.to_dict()
        with ws().guard.read():
            node = ws().store.get_nodes([doc_id]).get(doc_id)
        if node is None or node.type != NodeType.DOCUMENT:
            return JSONResponse({"detail": f"no document {doc_id!r}"}, status_code=404)
        # indexed outside the service (graphdex ingest)
        return {"id": doc_id, "status": "done", "source": node.props.get("source"), "title": node.props.get("title"),
                "chunks": node.props.get("chunk_count"), "words": node.props.get("words")}

    @app.delete("/documents/{doc_id}", dependencies=[write_access], tags=["documents"],
                summary="Delete a document: everything only it supported goes, shared nodes lose its support")
    def delete_document(doc_id: str) -> dict[str, Any]:
        jobs, service = state["jobs"], state["service"]
        job = jobs.get(doc_id)
        if job is not None and job.status == "processing":
            return JSONResponse({"detail": f"{doc_id} is being indexed right now; delete it when its status is done"}, status_code=409)
        if job is not None and job.status == "pending" and jobs.cancel_pending(doc_id):
            if not service.is_indexed(doc_id):
                return {"id": doc_id, "deleted": True, "was": "pending"}
        if not service.is_indexed(doc_id):
            if job is not None:
                jobs.forget(doc_id)
                return {"id": doc_id, "deleted": True, "was": job.status}
            return JSONResponse({"detail": f"no document {doc_id!r}"}, status_code=404)
        report = service.delete(doc_id)
        jobs.forget(doc_id)
        return {"id": doc_id, "deleted": True, "was": "done", "chunks": report.chunks, "nodes_deleted": report.nodes_deleted, "nodes_updated": report.nodes_updated}

    @app.post("/documents/{doc_id}/retry", status_code=202, dependencies=[write_access], tags=["documents"], summary="Queue a failed document again")
    def retry_document(doc_id: str) -> dict[str, Any]:
        job = state["jobs"].get(doc_id)
        if job is None:
            return JSONResponse({"detail": f"no submitted document {doc_id!r}"}, status_code=404)
        if job.status != "failed":
            return JSONResponse({"detail": f"{doc_id} is {job.status}; only failed documents can be retried"}, status_code=409)
        return state["jobs"].retry(doc_id).to_dict()

    # query ----------------------------------------------------------------------------------------------------

    query_slots = threading.BoundedSemaphore(settings.max_concurrent_queries)

    def _retrieve(body: QueryIn) -> tuple[Any, list]:
        with query_slots:  # an answer (network-bound) is written after the slot is given back
            result = ws().engine.retrieve(body.query, body.mode, body.top_k)
        hits = result.chunks
        if body.max_context_tokens is not None:
            hits = _within_budget(ws(), hits, body.max_context_tokens)
        return result, hits

    def _hits(hits: list) -> list[QueryHit]:
        return [QueryHit(text=h.text, doc_id=h.doc_id, title=h.title, chunk_id=h.chunk_id, score=h.score, source=h.source) for h in hits]

    @app.post("/query", dependencies=[read_access], tags=["query"], response_model=QueryOut,
              summary="Ranked context with citations (and an answer when an LLM is configured)")
    def query(body: QueryIn) -> QueryOut:
        answerer = ws().answerer
        if body.answer and answerer is None:
            raise QueryError("answers need a model: set GRAPHDEX_LLM_MODEL (see the README), or send answer=false")
        with counting_usage() as usage:
            result, hits = _retrieve(body)
            answer = answerer.answer(body.query, hits) if answerer is not None and body.answer is not False and hits else None
        return QueryOut(query=result.query, mode=result.mode, answer=answer.text if answer else None, seconds=result.seconds, keywords=result.keywords,
                        results=_hits(hits), nodes=[n.__dict__ for n in result.nodes],
                        citations=[CitationOut(**c.__dict__) for c in answer.citations] if answer else [], llm_usage=usage.snapshot())

    @app.post("/query/stream", dependencies=[read_access], tags=["query"],
              summary="Server-sent events: the context first, then the answer as the model writes it, then its citations",
              responses={200: {"content": {"text/event-stream": {}}}})
    def query_stream(body: QueryIn) -> StreamingResponse:
        answerer = ws().answerer
        if answerer is None:
            raise QueryError("streaming answers need a model: set GRAPHDEX_LLM_MODEL (see the README)")
        result, hits = _retrieve(body)

        def events() -> Iterator[str]:
            yield _sse("context", {"query": result.query, "mode": result.mode, "results": [h.model_dump() for h in _hits(hits)]})
            parts: list[str] = []
            try:
                for delta in answerer.stream(body.query, hits):
                    parts.append(delta)
                    yield _sse("token", {"text": delta})
            except LLMError as error:
                yield _sse("error", {"detail": str(error)})
                return
            text = "".join(parts)
            yield _sse("done", {"answer": text, "citations": [c.__dict__ for c in citations_in(text, hits)]})

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    # graph ----------------------------------------------------------------------------------------------------

    @app.get("/graph/stats", dependencies=[read_access], tags=["graph"], summary="Counts per node type, edge type and vector index")
    def graph_stats() -> dict[str, Any]:
        with ws().guard.read():
            return {**ws().stats(), "queue": state["jobs"].counts()}

    @app.get("/graph/entities", dependencies=[read_access], tags=["graph"], summary="Entities whose name or alias contains the text")
    def search_entities(q: str = Query(..., min_length=1, max_length=200), limit: int = Query(20, ge=1, le=200)) -> dict[str, Any]:
        with ws().guard.read():
            found = ws().store.find_entities(q, limit)
        return {"entities": [{**_node_summary(n), "entity_type": n.props.get("type"), "support": n.props.get("support")} for n in found]}

    @app.get("/graph/entities/{entity_id}", dependencies=[read_access], tags=["graph"], summary="An entity with its strongest neighbours")
    def get_entity(entity_id: str, limit: int = Query(25, ge=1, le=500)) -> dict[str, Any]:
        with ws().guard.read():
            node = ws().store.get_nodes([entity_id]).get(entity_id)
            if node is None or node.type != NodeType.ENTITY:
                return JSONResponse({"detail": f"no entity {entity_id!r}"}, status_code=404)
            edges = sorted(ws().store.edges_of(entity_id, [EdgeType.RELATED_TO]), key=lambda e: -float(e.props.get("weight", 1)))[:limit]
            others = ws().store.get_nodes(e.target if e.source == entity_id else e.source for e in edges)
        neighbours = []
        for edge in edges:
            other = others.get(edge.target if edge.source == entity_id else edge.source)
            if other is not None:
                neighbours.append({**_node_summary(other), "keywords": edge.props.get("keywords", []), "weight": edge.props.get("weight", 1)})
        return {"entity": {"id": node.id, **node.props}, "neighbours": neighbours}

    @app.get("/graph/subgraph", dependencies=[read_access], tags=["graph"], summary="The entities and relations around an entity")
    def subgraph(entity: str = Query(..., min_length=1), depth: int = Query(1, ge=1, le=3), limit: int = Query(100, ge=1, le=MAX_SUBGRAPH_NODES)) -> dict[str, Any]:
        with ws().guard.read():
            store = ws().store
            start = store.get_nodes([entity]).get(entity)
            if start is None or start.type != NodeType.ENTITY:
                return JSONResponse({"detail": f"no entity {entity!r}"}, status_code=404)
            seen = {entity: 0}
            edges: dict[tuple, dict[str, Any]] = {}
            frontier = deque([entity])
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
        return {"nodes": [{**_node_summary(nodes[i]), "depth": d} for i, d in seen.items() if i in nodes], "edges": list(edges.values())}

    @app.get("/graph/communities/{community_id}", dependencies=[read_access], tags=["graph"], summary="A community: label, keywords, members, chunks")
    def get_community(community_id: str) -> dict[str, Any]:
        with ws().guard.read():
            node = ws().store.get_nodes([community_id]).get(community_id)
        if node is None or node.type != NodeType.COMMUNITY:
            return JSONResponse({"detail": f"no community {community_id!r}"}, status_code=404)
        return {"id": node.id, **node.props}

    @app.get("/health", tags=["service"], summary="Store and vector indexes reachable, queue state")
    def health() -> dict[str, Any]:
        with ws().guard.read():
            version = ws().store.version
            vectors = ws().vectors.counts()
        return {"status": "ok", "store": settings.store, "store_version": version, "vectors": vectors, "queue": state["jobs"].counts()}

    def openapi() -> dict[str, Any]:
        """FastAPI's schema, plus the JSON body of POST /documents (read by hand there, to share the path with uploads)."""
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            body = DocumentsIn.model_json_schema(ref_template="#/components/schemas/{model}")
            schema["components"]["schemas"].update(body.pop("$defs", {}), DocumentsIn=body)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _queue_name(settings: Settings) -> str:
    return "jobs.sqlite" if settings.store == "embedded" else f"jobs-neo4j-{settings.neo4j_workspace}.sqlite"


def _within_budget(workspace: Workspace, hits: list, budget: int) -> list:
    count = getattr(workspace.embedder, "count_tokens", None)
    sizes = count([h.text for h in hits]) if count else [int(len(h.text.split()) * 1.3) + 1 for h in hits]
    kept, used = [], 0
    for hit, size in zip(hits, sizes):
        if used + size > budget:
            break
        kept.append(hit)
        used += size
    return kept

