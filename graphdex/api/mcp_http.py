"""The MCP server on the REST service: streamable HTTP at /mcp, over the service's own running state.

Stateless, with JSON responses: every POST carries one message and gets its answer, and no MCP session lives on the
server between requests. graphdex's tools neither stream nor call back to the client, so a session would only be
state to expire and lose at a restart; without one, each request is checked for its key on its own, like a REST
request, and any number of service processes behind a proxy could answer.

Keys: when reads need a key (GRAPHDEX_API_KEY_FOR_READS), a request without a valid one is refused with a 401 before
its body is read, as on the REST routes. Whether the key may read or write the workspace a tool call names is
checked by the tool (mcp_server.py): a refusal there is a tool error saying why.

Bodies: what the REST routes refuse as not JSON (NaN, Infinity, numbers beyond a 64-bit float, json_bodies.py) is
refused here too, before the SDK reads the body (its parser lets those through): 400 with a JSON-RPC parse error,
which is how the SDK answers any body that is not JSON.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.types import PARSE_ERROR
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from graphdex.api.access import Access, KeyRing, Refused
from graphdex.api.json_bodies import parse_json
from graphdex.api.mcp_server import presented_key

MCP_PATH = "/mcp"


class McpEndpoint:
    """The ASGI app the REST service routes /mcp to. Its session manager runs while the service does (``running``);
    a manager runs only once, so each start of the service gets a new one."""

    def __init__(self, server: MCPServer[Any], keys: KeyRing, max_request_bytes: int) -> None:
        self._server = server
        self._keys = keys
        self._max_request_bytes = max_request_bytes
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # the SDK builds its manager with its own Starlette app around it; the route is the service's, so only the
        # manager is kept
        self._server.streamable_http_app(stateless_http=True, json_response=True, max_request_body_size=self._max_request_bytes)
        manager = self._server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self._keys.grant(presented_key(Headers(scope=scope)), Access.READ)  # open unless reads need a key
        except Refused as refused:
            await JSONResponse({"detail": str(refused)}, status_code=refused.status)(scope, receive, send)
            return
        if self._manager is None:
            await JSONResponse({"detail": "the service is starting or stopping"}, status_code=503)(scope, receive, send)
            return
        if scope["method"] == "POST":
            body = await Request(scope, receive).body()
            try:
                parse_json(body)
            except json.JSONDecodeError as error:
                parse_error = {"code": PARSE_ERROR, "message": f"Parse error: {error.msg} (at character {error.pos})"}
                await JSONResponse({"jsonrpc": "2.0", "id": None, "error": parse_error}, status_code=400)(scope, receive, send)
                return
            receive = _replaying(body, receive)
        await self._manager.handle_request(scope, receive, send)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the SDK the body already read, then whatever the connection says next."""
    unread: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return unread.pop() if unread else await receive()

    return replay
