"""The REST API: documents in (queued, indexed in the background), queries and graph browsing out.

Start it with `graphdex serve`. OpenAPI documentation is served at /docs. User mistakes get a 4xx with a message
(bad JSON, unsupported or binary files, unknown ids, oversized bodies); a 5xx means the service itself is in trouble
(the store unreachable), never the caller.

This module only assembles the app: the routes are in `routers/`, their bodies in `schemas.py`, what they need in
`deps.py`, and how failures become responses in `errors.py`; the MCP endpoint for agents is `mcp_http.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from graphdex import __version__
from graphdex.api.access import KeyRing
from graphdex.api.deps import running_service, workspace_in_path
from graphdex.api.errors import BodySizeLimit, add_error_handlers
from graphdex.api.forward import WriterForwarder
from graphdex.api.mcp_http import MCP_PATH, McpEndpoint
from graphdex.api.mcp_server import create_mcp_server
from graphdex.api.routers import documents, graph, health, query, workspaces
from graphdex.api.schemas import DocumentsIn
from graphdex.api.web_ui import add_web_ui
from graphdex.api.workspace import Workspace
from graphdex.common.settings import Settings


def create_app(settings: Settings | None = None, workspace: Workspace | None = None) -> FastAPI:
    """The service over the workspaces of one data directory. ``workspace`` is the default one, which lets tests share
    loaded models (every other workspace borrows its models); by default it is built from settings."""
    settings = settings or (workspace.settings if workspace else Settings())
    keys = KeyRing.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with running_service(app, settings, keys, workspace):
            async with mcp.running():
                yield

    app = FastAPI(title="graphdex", version=__version__, lifespan=lifespan,
                  description="Graph-based knowledge index: submit documents, follow their indexing, query with citations, browse the graph.")
    if not settings.ingest and settings.writer_url:
        # a query replica passes document and workspace requests on to the writer (inside the body limit below)
        app.add_middleware(WriterForwarder, writer_url=settings.writer_url)
    app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes)
    add_error_handlers(app)
    # every route of an index twice: unprefixed for the default workspace, and under the workspace's name
    for area in (documents, query, graph, health):
        app.include_router(area.router)
        app.include_router(area.router, prefix="/workspaces/{workspace}", dependencies=[Depends(workspace_in_path)])
    app.include_router(workspaces.router)
    add_web_ui(app, settings)  # the pages at /ui, over the routes above
    # agents' endpoint (MCP over streamable HTTP): the same workspaces, writers and query slots as the routes above
    mcp = McpEndpoint(create_mcp_server(lambda: app.state.graphdex, log_level=settings.log_level), keys, settings.max_request_bytes)
    # Starlette serves an ASGI app as a route's endpoint too; its annotation names only request handlers
    app.add_route(MCP_PATH, mcp, methods=["GET", "POST", "DELETE"], include_in_schema=False)  # type: ignore[arg-type]
    app.openapi = _openapi_with_documents_body(app)  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
    return app


def _openapi_with_documents_body(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's schema, plus the JSON body of POST /documents: that route reads its body by hand (to share the path
    with uploads), so FastAPI never sees the model, and clients and schemathesis need it in the components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            body = DocumentsIn.model_json_schema(ref_template="#/components/schemas/{model}")
            schema["components"]["schemas"].update(body.pop("$defs", {}), DocumentsIn=body)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
