"""JSON request bodies read as JSON defines them (common/strict_json.py), the same way on every route and on /mcp.

FastAPI's parser and the MCP SDK's both read NaN, Infinity and 1e400 as numbers; here they are refused where a body is
parsed, as any other body that is not JSON: a 422 on the REST routes, a JSON-RPC parse error on /mcp, the message
naming the number.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from graphdex.common import strict_json
from graphdex.ingest.documents import excerpt


def parse_json(body: bytes) -> Any:
    """A JSON body as data, read as json.loads reads bytes, except that NaN, Infinity, -Infinity and numbers that
    overflow a 64-bit float are refused. Anything that is not JSON, or that Python's parser cannot take (nesting past
    its stack, integers of thousands of digits), raises json.JSONDecodeError, with its position where known:
    FastAPI turns that into its 422, and the routes that parse by hand do the same (`not_json`)."""
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError as error:
        raise json.JSONDecodeError(f"the body is not {error.encoding} text (byte 0x{body[error.start]:02x}); send JSON as UTF-8",
                                   "", error.start) from None
    try:
        return strict_json.loads(text)
    except RecursionError:  # arrays or objects nested past the parser's stack
        raise json.JSONDecodeError("nested too deeply to read", text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # an integer of more digits than Python converts
        raise json.JSONDecodeError(excerpt(str(error)), text, 0) from None


def not_json(error: json.JSONDecodeError) -> RequestValidationError:
    """The 422 FastAPI gives a body that is not JSON, for the routes that read their body by hand."""
    return RequestValidationError([{"type": "json_invalid", "loc": ("body", error.pos), "msg": "JSON decode error", "input": {},
                                    "ctx": {"error": error.msg}}])


class StrictJsonRequest(Request):
    """A request whose `.json()` is `parse_json`: FastAPI reads declared bodies through it, and so do the routes."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """A route that hands FastAPI a StrictJsonRequest, so every JSON body it reads is refused the same way when it is
    not JSON; the routers use it through KeyCheckedFirst (deps.py)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_json
