"""The query replica's forwarding of document and workspace requests to the writer (GRAPHDEX_WRITER_URL).

Only the writer has the ingestion queue, so a replica passes on, unchanged, every request about documents (submit,
upload, status, list, retry, delete), workspace creation, deletion and listing, and everything under a named
workspace (a replica serves the default workspace only: named ones exist as folders of the writer's data directory).
The writer checks the API key (the header is passed on) and answers; its response goes back as it is. Queries, graph
reads and health of the default workspace are answered by the replica itself.
"""

from __future__ import annotations

import logging
import re

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from graphdex.api.layout import DEFAULT_WORKSPACE

log = logging.getLogger(__name__)

# the whole request and response pass through memory: bodies are bounded by GRAPHDEX_MAX_REQUEST_BYTES already
FORWARD_TIMEOUT_SECONDS = 120.0
_DOCUMENTS = re.compile(r"^(/workspaces/[^/]+)?/documents(/.*)?$")
_NAMED = re.compile(r"^/workspaces/(?P<name>[^/]+)(/.*)?$")
# hop-by-hop headers and those the client library sets itself
_DROPPED = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade",
                      "proxy-authorization", "proxy-connection", "trailer", "content-encoding"})


def forwarded(path: str) -> bool:
    """Whether the writer, not this replica, answers requests to ``path``."""
    if _DOCUMENTS.match(path) or path.rstrip("/") == "/workspaces":
        return True
    named = _NAMED.match(path)
    return named is not None and named["name"] != DEFAULT_WORKSPACE


class WriterForwarder:
    """ASGI middleware of a query replica: requests for the writer go to ``writer_url``, the rest to the app."""

    def __init__(self, app: ASGIApp, writer_url: str) -> None:
        self.app = app
        self.writer_url = writer_url.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not forwarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await self._forward(request)
        await response(scope, receive, send)

    async def _forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
        headers["x-forwarded-for"] = request.client.host if request.client else ""
        try:
            # a client per request: writes are rare next to queries, and nothing is left open when the app stops
            async with httpx.AsyncClient(base_url=self.writer_url, timeout=FORWARD_TIMEOUT_SECONDS) as client:
                answer = await client.request(request.method, request.url.path, params=request.url.query or None,
                                              headers=headers, content=await request.body())
        except httpx.HTTPError as error:
            log.warning("forwarding %s %s to the writer at %s failed: %s", request.method, request.url.path, self.writer_url, error)
            return JSONResponse({"detail": f"this query replica forwards {request.method} {request.url.path} to the writer at "
                                           f"{self.writer_url} (GRAPHDEX_WRITER_URL), which did not answer: {error}"}, status_code=502)
        return Response(answer.content, status_code=answer.status_code,
                        headers={k: v for k, v in answer.headers.items() if k.lower() not in _DROPPED})
