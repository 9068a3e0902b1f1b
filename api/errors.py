"""How failures reach the caller: a 4xx with a message for the caller's mistakes, a 5xx only when the service itself
is in trouble (the store unreachable, the model failing).

Routes raise the domain's own exceptions (DocumentError, QueryError...) and these handlers give each its status, so
the same rule holds on every route without a try/except in each.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphdex.api.service import ServiceBusy
from graphdex.common.llm import LLMError
from graphdex.graph.store import StoreError
from graphdex.ingest.documents import DocumentError
from graphdex.query.engine import QueryError


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuses bodies over the limit with 413, whether or not the client declared a Content-Length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
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


def add_error_handlers(app: FastAPI) -> None:
    """Maps the domain's exceptions to their HTTP status."""
    app.add_exception_handler(DocumentError, _callers_mistake)
    app.add_exception_handler(QueryError, _callers_mistake)
    app.add_exception_handler(ServiceBusy, _busy)
    app.add_exception_handler(LLMError, _model_down)
    app.add_exception_handler(StoreError, _store_down)


async def _callers_mistake(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=422)


async def _busy(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "5"})


async def _model_down(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"the language model failed: {error}"}, status_code=502)


async def _store_down(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"the graph store is unavailable: {error}"}, status_code=503)
