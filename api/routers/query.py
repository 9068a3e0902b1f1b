"""Queries: ranked context with citations, and an answer when a model is configured, whole or streamed.

Retrieval is CPU-bound, so at most GRAPHDEX_MAX_CONCURRENT_QUERIES run at once (more only add contention and starve
ingestion); writing the answer waits on the network, so it happens after the query has given its slot back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from graphdex.api.deps import KeyCheckedFirst, QuerySlotsDep, SettingsDep, WorkspaceDep, require_read_key
from graphdex.api.schemas import CitationOut, QueryHit, QueryIn, QueryOut
from graphdex.api.workspace import Workspace
from graphdex.common.llm import LLMError, counting_usage
from graphdex.query.answer import citations_in
from graphdex.query.engine import QueryError
from graphdex.query.results import ChunkHit, QueryResult

router = APIRouter(route_class=KeyCheckedFirst, tags=["query"], dependencies=[Depends(require_read_key)])


@router.post("/query", response_model=QueryOut, summary="Ranked context with citations (and an answer when an LLM is configured)")
def query(body: QueryIn, ws: WorkspaceDep, settings: SettingsDep, slots: QuerySlotsDep) -> QueryOut:
    answerer = ws.answerer
    if body.answer and answerer is None:
        raise QueryError("answers need a model: set GRAPHDEX_LLM_MODEL (see the README), or send answer=false")
    with counting_usage() as usage:
        result, hits = _retrieve(body, ws, settings.top_k, slots)
        answer = answerer.answer(body.query, hits) if answerer is not None and body.answer is not False and hits else None
    return QueryOut(query=result.query, mode=result.mode, answer=answer.text if answer else None, seconds=result.seconds, keywords=result.keywords,
                    results=_hits(hits), nodes=[n.__dict__ for n in result.nodes],
                    citations=[CitationOut(**c.__dict__) for c in answer.citations] if answer else [], llm_usage=usage.snapshot())


@router.post("/query/stream", responses={200: {"content": {"text/event-stream": {}}}},
             summary="Server-sent events: the context first, then the answer as the model writes it, then its citations")
def query_stream(body: QueryIn, ws: WorkspaceDep, settings: SettingsDep, slots: QuerySlotsDep) -> StreamingResponse:
    answerer = ws.answerer
    if answerer is None:
        raise QueryError("streaming answers need a model: set GRAPHDEX_LLM_MODEL (see the README)")
    result, hits = _retrieve(body, ws, settings.top_k, slots)

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
        yield _sse("done", {"answer": text, "citations": [c.__dict__ for c in citations_in(text, body.query, hits)]})

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _retrieve(body: QueryIn, ws: Workspace, top_k: int, slots: threading.BoundedSemaphore) -> tuple[QueryResult, list[ChunkHit]]:
    with slots:
        result = ws.engine.retrieve(body.query, body.mode, body.chunks_wanted(top_k))
    hits = result.chunks
    if body.max_context_tokens is not None:
        hits = _within_budget(ws, hits, body.max_context_tokens)
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


def _hits(hits: list[ChunkHit]) -> list[QueryHit]:
    return [QueryHit(text=h.text, doc_id=h.doc_id, title=h.title, chunk_id=h.chunk_id, score=h.score, source=h.source) for h in hits]


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
