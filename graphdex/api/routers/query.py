"""Queries: ranked context with citations, and an answer when a model is configured, whole or streamed.

Retrieval is CPU-bound, so at most GRAPHDEX_MAX_CONCURRENT_QUERIES run at once (more only add contention and starve
ingestion); writing the answer waits on the network, so it happens after the query has given its slot back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from graphdex.api import actions
from graphdex.api.deps import IndexDep, KeyCheckedFirst, QuerySlotsDep, SettingsDep, require_read_key
from graphdex.api.schemas import CitationOut, QueryIn, QueryOut
from graphdex.common.llm import LLMError, counting_usage
from graphdex.query.engine import QueryError

router = APIRouter(route_class=KeyCheckedFirst, tags=["query"], dependencies=[Depends(require_read_key)])


@router.post("/query", response_model=QueryOut, summary="Ranked context with citations (and an answer when an LLM is configured)")
def query(body: QueryIn, index: IndexDep, settings: SettingsDep, slots: QuerySlotsDep) -> QueryOut:
    answerer = index.answerer
    if body.answer and answerer is None:
        raise QueryError("answers need a model: set GRAPHDEX_LLM_MODEL (see the README), or send answer=false")
    with counting_usage() as usage:
        result, hits = actions.retrieve(body, index, settings.top_k, slots)
        answer = answerer.answer(body.query, hits) if answerer is not None and body.answer is not False and hits else None
    return QueryOut(query=result.query, mode=result.mode, answer=answer.text if answer else None, seconds=result.seconds, keywords=result.keywords,
                    results=actions.query_hits(hits, index.passage_links(result, hits)), nodes=[n.__dict__ for n in result.nodes],
                    citations=[CitationOut(**c.__dict__) for c in answer.citations] if answer else [], llm_usage=usage.snapshot())


@router.post("/query/stream", responses={200: {"content": {"text/event-stream": {}}}},
             summary="Server-sent events: the context first, then the answer as the model writes it, then its citations")
def query_stream(body: QueryIn, index: IndexDep, settings: SettingsDep, slots: QuerySlotsDep) -> StreamingResponse:
    answerer = index.answerer
    if answerer is None:
        raise QueryError("streaming answers need a model: set GRAPHDEX_LLM_MODEL (see the README)")
    result, hits = actions.retrieve(body, index, settings.top_k, slots)
    via = index.passage_links(result, hits)

    def events() -> Iterator[str]:
        yield _sse("context", {"query": result.query, "mode": result.mode, "results": [h.model_dump() for h in actions.query_hits(hits, via)]})
        stream = answerer.stream(body.query, hits)
        try:
            for delta in stream:
                yield _sse("token", {"text": delta})
        except LLMError as error:
            yield _sse("error", {"detail": str(error)})
            return
        yield _sse("done", {"answer": stream.text, "citations": [c.__dict__ for c in stream.citations]})

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
