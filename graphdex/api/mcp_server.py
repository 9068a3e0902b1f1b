"""graphdex as an MCP server: the tools and resources an agent (a desktop assistant, an IDE agent) uses.

One server definition, two transports: stdio (`graphdex mcp`, see stdio_mcp_server below) and streamable HTTP on
the REST service (mcp_http.py). Either way the tools work on a running service's state (ServiceState: the registry
of workspaces, each with its durable queue and its only writer, and the query slots) through the functions the REST
routes call (actions.py), so a document added by an agent is queued, indexed and deleted exactly as one posted to
/documents, and a search takes a query slot like POST /query.

Keys follow the REST rules, checked per call against the workspace the call names: writes need a key for it as soon
as GRAPHDEX_API_KEY is set, reads too with GRAPHDEX_API_KEY_FOR_READS. Over HTTP the key comes from the X-API-Key
header (or `Authorization: Bearer`); over stdio there are no keys: whoever starts the process owns the index.

Every mistake of the caller (an unknown mode or id, a bad workspace name, a document over the limits, a key that is
not allowed) is a tool error with a message (an `isError` result), never a protocol error: the agent reads it and
corrects itself, and the session goes on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from graphdex import __version__
from graphdex.api import actions
from graphdex.api.access import Access, KeyRing
from graphdex.api.deps import ServiceState, open_service
from graphdex.api.layout import DEFAULT_WORKSPACE, NAME_RULE
from graphdex.api.mcp_schemas import (
    Deletion,
    DocumentStatus,
    Entity,
    EntityMatch,
    EntityMatches,
    EntityNeighbourhood,
    GraphStats,
    Neighbour,
    SearchResult,
    Subgraph,
    SubgraphEdge,
    SubgraphNode,
    Submission,
    SubmittedDocument,
)
from graphdex.api.registry import ServedWorkspace
from graphdex.api.schemas import MAX_DOCUMENTS_PER_REQUEST, DocumentIn, Mode, QueryIn
from graphdex.common.errors import GraphdexError
from graphdex.common.settings import Settings
from graphdex.ingest.documents import excerpt
from graphdex.query.engine import DEFAULT_MODE, MODES
from graphdex.query.explore import MAX_SUBGRAPH_NODES

log = logging.getLogger(__name__)

#: Where the tools find the running service: the REST app's own, or the one `graphdex mcp` opens.
ServiceLookup = Callable[[], ServiceState]

#: Over stdio the local user owns the process and the index: no key applies.
NO_KEYS = KeyRing(admin_key=None, scoped=(), for_reads=False)

# a tool error quotes at most this much of a message (which may echo what the caller sent)
MAX_ERROR_CHARS = 1000

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)

# The HTTP headers of the message being handled (None over stdio). Set around every request by the middleware
# below, so a tool or resource reads the caller's key without taking a Context (static resources cannot).
_headers: ContextVar[Mapping[str, str] | None] = ContextVar("graphdex_mcp_headers", default=None)

WorkspaceArg = Annotated[str | None, Field(description=f"The workspace to use ({NAME_RULE}); default: the server's workspace.")]


def presented_key(headers: Mapping[str, str] | None) -> bytes:
    """The API key a request carries: X-API-Key, else an `Authorization: Bearer` token (what MCP clients configure
    most easily); b"" without one. Starlette decodes header values as latin-1, which maps bytes one to one, so
    encoding back gives the bytes sent and a UTF-8 key matches as it does on the REST routes."""
    if headers is None:
        return b""
    key = headers.get("x-api-key")
    if key is None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    return key.encode("latin-1")


async def _remember_headers(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Server middleware: the handler of every request runs with its headers in ``_headers``."""
    token = _headers.set(getattr(ctx.request, "headers", None))
    try:
        return await call_next(ctx)
    finally:
        _headers.reset(token)


@contextmanager
def _reported_as(error_type: type[ToolError | ResourceError]) -> Iterator[None]:
    """The caller's mistakes (and an unreachable store or model) as the errors the SDK shows the agent with their
    message: a tool error (an `isError` result), or a failed resource read. Anything else is a bug, which the SDK
    logs and reports without details."""
    try:
        yield
    except GraphdexError as error:
        if type(error) is GraphdexError:
            raise  # graphdex's own fault
        raise error_type(excerpt(error.described(), MAX_ERROR_CHARS)) from None


def create_mcp_server(service: ServiceLookup, default_workspace: str = DEFAULT_WORKSPACE,
                      lifespan: Callable[[MCPServer[Any]], AbstractAsyncContextManager[Any]] | None = None, log_level: str = "WARNING") -> MCPServer[Any]:
    """The MCP server over the service ``service`` returns. ``default_workspace`` serves calls that name none;
    ``lifespan`` opens and closes the service where nothing else does (stdio)."""
    server: MCPServer[Any] = MCPServer(
        "graphdex", version=__version__, lifespan=lifespan, middleware=[_remember_headers], log_level=log_level.upper(),  # type: ignore[arg-type]
        instructions="graphdex is a knowledge index over documents, with a knowledge graph of their entities and relations. "
                     "Use `search` to find passages that answer a question (with citations), `lookup_entity`, "
                     "`entity_neighbourhood` and `subgraph` to explore the graph, and `add_documents` to index new text "
                     "(indexing runs in the background: poll `document_status`).")

    @contextmanager
    def workspace_for(workspace: str | None, access: Access, errors: type[ToolError | ResourceError] = ToolError) -> Iterator[tuple[str, ServedWorkspace]]:
        """The named workspace (the default one without a name), if the caller's key allows this access to it, in
        use until the call is done (so deleting the workspace waits for it)."""
        name = workspace or default_workspace
        state = service()
        with _reported_as(errors):
            state.keys.check(presented_key(_headers.get()), access, name)
            served = state.registry.acquire(name)
        try:
            with _reported_as(errors):
                yield name, served
        finally:
            served.leave()

    @server.tool(annotations=_READ)
    def search(query: Annotated[str, Field(min_length=1, max_length=4000, description="The question or keywords.")],
               mode: Annotated[Mode, Field(description=f"Retrieval mode: {', '.join(MODES)}. `{DEFAULT_MODE}` (personalized PageRank over the "
                                                       "graph) is the best on most questions, above all multi-hop ones; `naive` is plain "
                                                       "vector search over passages.")] = DEFAULT_MODE,
               top_k: Annotated[int | None, Field(ge=1, le=200, description="Passages to return; default: the server's GRAPHDEX_TOP_K.")] = None,
               max_context_tokens: Annotated[int | None, Field(ge=1, le=1_000_000, description="Stop adding passages once their tokens would "
                                                                                            "pass this budget.")] = None,
               workspace: WorkspaceArg = None) -> SearchResult:
        """Find the passages of the indexed documents that best answer a question, best first, each with its
        citation (document id, title, source, chunk id, score, section and page when known)."""
        request = QueryIn(query=query, mode=mode, max_context_tokens=max_context_tokens, **({"top_k": top_k} if top_k is not None else {}))
        state = service()
        with workspace_for(workspace, Access.READ) as (name, served):
            result, hits = actions.retrieve(request, served.index, state.settings.top_k, state.query_slots)
        return SearchResult(workspace=name, query=result.query, mode=request.mode, passages=actions.query_hits(hits), seconds=result.seconds)

    @server.tool(annotations=_READ)
    def lookup_entity(name: Annotated[str, Field(min_length=1, max_length=200, description="A name, or part of one (case does not matter).")],
                      limit: Annotated[int, Field(ge=1, le=200, description="Most entities to return.")] = 20,
                      workspace: WorkspaceArg = None) -> EntityMatches:
        """Entities of the knowledge graph (people, places, organisations, works, concepts...) whose name or alias
        contains the text, with their ids for entity_neighbourhood and subgraph."""
        with workspace_for(workspace, Access.READ) as (ws_name, served):
            found = served.index.find_entities(name, limit)
        return EntityMatches(workspace=ws_name, entities=[EntityMatch(**e) for e in found])

    @server.tool(annotations=_READ)
    def entity_neighbourhood(entity_id: Annotated[str, Field(min_length=1, max_length=2000, description="An entity id from lookup_entity (ent-...).")],
                             limit: Annotated[int, Field(ge=1, le=500, description="Most neighbours to return.")] = 25,
                             workspace: WorkspaceArg = None) -> EntityNeighbourhood:
        """An entity (name, type, aliases, what the text says about it, the documents that mention it) and the
        entities most strongly linked to it, with what links them."""
        with workspace_for(workspace, Access.READ) as (name, served):
            found = served.index.entity(entity_id, limit)
        return EntityNeighbourhood(workspace=name, entity=Entity.from_props(found["entity"]), neighbours=[Neighbour(**n) for n in found["neighbours"]])

    @server.tool(annotations=_READ)
    def subgraph(entity_id: Annotated[str, Field(min_length=1, max_length=2000, description="The entity to start from (an id from lookup_entity).")],
                 depth: Annotated[int, Field(ge=1, le=3, description="Links to follow from it.")] = 1,
                 limit: Annotated[int, Field(ge=1, le=MAX_SUBGRAPH_NODES, description="Most nodes to return (the strongest links first).")] = 100,
                 workspace: WorkspaceArg = None) -> Subgraph:
        """The entities within `depth` links of an entity and the links between them."""
        with workspace_for(workspace, Access.READ) as (name, served):
            found = served.index.subgraph(entity_id, depth, limit)
        return Subgraph(workspace=name, nodes=[SubgraphNode(**n) for n in found["nodes"]], edges=[SubgraphEdge(**e) for e in found["edges"]])

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False))
    def add_documents(documents: Annotated[list[DocumentIn], Field(min_length=1, max_length=MAX_DOCUMENTS_PER_REQUEST,
                                                                   description="The documents: title and text, and optionally a source "
                                                                               "(the same source with new text replaces the document) and metadata.")],
                      workspace: WorkspaceArg = None) -> Submission:
        """Queue documents for indexing; returns their ids at once. Indexing runs in the background (seconds per
        document): poll document_status until `done` before searching for them. Adding the same document again
        changes nothing."""
        with workspace_for(workspace, Access.WRITE) as (name, served):
            submitted = actions.submit_documents(served.jobs, actions.documents_from_json(documents))
        return Submission(workspace=name, documents=[SubmittedDocument(**d) for d in submitted])

    @server.tool(annotations=_READ)
    def document_status(document_id: Annotated[str, Field(min_length=1, max_length=2000,
                                                          description="A document id (doc-...) from add_documents or a search.")],
                        workspace: WorkspaceArg = None) -> DocumentStatus:
        """Where a document's indexing is: pending, processing, done, failed (with the error) or deleting."""
        with workspace_for(workspace, Access.READ) as (name, served):
            status = actions.document_status(served.queue, served.index, document_id)
        return DocumentStatus.from_dict(name, status)

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False))
    def delete_document(document_id: Annotated[str, Field(min_length=1, max_length=2000, description="The document id (doc-...).")],
                        workspace: WorkspaceArg = None) -> Deletion:
        """Delete a document and everything only it supported (entities and relations other documents also
        mention stay). The delete is final once acknowledged and is carried out in the background."""
        with workspace_for(workspace, Access.WRITE) as (name, served):
            marked = actions.delete_document(served.jobs, served.index, document_id)
        return Deletion.from_marked(name, marked)

    def stats_of(workspace: str | None) -> str:
        with workspace_for(workspace, Access.READ, ResourceError) as (name, served):
            counts = actions.graph_stats(served.index, served.queue_counts())
        return GraphStats(workspace=name, **{field: counts[field] for field in GraphStats.model_fields if field != "workspace"}).model_dump_json(indent=2)

    @server.resource("graphdex://stats", name="stats", mime_type="application/json")
    def stats() -> str:
        """Counts of the server's workspace: nodes per type, edges per type, vectors per index, queued documents."""
        return stats_of(None)

    @server.resource("graphdex://workspaces/{workspace}/stats", name="workspace-stats", mime_type="application/json")
    def workspace_stats(workspace: str) -> str:
        """Counts of one workspace: nodes per type, edges per type, vectors per index, queued documents."""
        return stats_of(workspace)

    return server


def stdio_mcp_server(settings: Settings, default_workspace: str = DEFAULT_WORKSPACE) -> MCPServer[Any]:
    """The server `graphdex mcp` runs: it opens the service itself, with the same queue and ingestion thread per
    workspace as `graphdex serve`, so it is the index's only writer while it runs (a `graphdex serve` or ingest on
    the same data directory is refused meanwhile, as they refuse each other)."""
    opened: list[ServiceState] = []

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[None]:
        # Opened once the stdio transport has moved stray prints away from stdout, which carries the protocol: the
        # extractor's processes started here inherit that. Loading models takes seconds: off the event loop.
        stack = ExitStack()
        try:
            opened.append(await anyio.to_thread.run_sync(stack.enter_context, open_service(settings, NO_KEYS)))
            log.info("serving %s over MCP (stdio)", settings.data_dir)
            yield
        finally:
            opened.clear()
            await anyio.to_thread.run_sync(stack.close)  # stops the ingestion threads, closes the stores

    return create_mcp_server(lambda: opened[0], default_workspace, lifespan, settings.log_level)
