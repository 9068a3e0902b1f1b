"""JSON request bodies read as JSON defines them, the same way on every route and on /mcp.

Python's json module (FastAPI's parser) also reads NaN, Infinity and -Infinity, and reads a number beyond the range
of a 64-bit float (1e400) as infinity; the MCP SDK's parser does the same. None of these is a number a client can be
given back: the embedded store writes them as null, and parsers other than Python's (JavaScript's JSON.parse, orjson)
refuse them. So they are refused where a body is parsed, as any other body that is not JSON: a 422 on the REST
routes, a JSON-RPC parse error on /mcp, the message naming the number.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from graphdex.ingest.documents import excerpt


class _NotAJsonNumber(ValueError):
    """Raised from inside the parser, which does not know where it is: `parse_json` finds the place."""

    def __init__(self, literal: str, reason: str) -> None:
        super().__init__(reason)
        self.literal = literal


# Outside its strings a JSON text is numbers, the literals true/false/null and punctuation. Skipping whole strings,
# the first token equal to the refused one is where the parser stopped (an earlier equal one would have been refused).
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?[0-9][0-9.eE+-]*')


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
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotAJsonNumber as refused:
        position = next((token.start() for token in _TOKENS.finditer(text) if token.group() == refused.literal), 0)
        raise json.JSONDecodeError(str(refused), text, position) from None
    except RecursionError:  # arrays or objects nested past the parser's stack
        raise json.JSONDecodeError("nested too deeply to read", text, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # an integer of more digits than Python converts
        raise json.JSONDecodeError(excerpt(str(error)), text, 0) from None


def _refuse_constant(literal: str) -> float:
    raise _NotAJsonNumber(literal, f"{literal} is not JSON: JSON numbers are finite; send null, or the value as a string")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _NotAJsonNumber(literal, f"{excerpt(literal, 40)} is beyond the range of a 64-bit float (about ±1.8e308) "
                                       "and would be read as infinity; send it as a string")
    return value


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
