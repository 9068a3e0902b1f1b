"""How failures reach the caller: a 4xx with a message for the caller's mistakes, a 5xx only when the service itself
is in trouble (the store unreachable, the model failing).

Routes raise the domain's own exceptions (DocumentError, QueryError...) and these handlers give each its status, so
the same rule holds on every route without a try/except in each. Every message quotes at most a bounded excerpt of
what the caller sent, and renders whatever it contains (raw bytes, lone surrogates): a refusal must never become a
500 because its own echo could not be encoded, nor send a large request back.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphdex.common.errors import Conflict, GraphdexError, InvalidInput, NotAllowed, NotFound, Unavailable, UpstreamFailed
from graphdex.ingest.documents import excerpt


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


# a 422 lists at most this many problems (a request of 10,000 documents could have one each), and a message this long
MAX_ERRORS_LISTED = 20
MAX_MESSAGE_CHARS = 1000


def add_error_handlers(app: FastAPI) -> None:
    """Maps graphdex's error categories (graphdex/common/errors.py) to their HTTP status, once for every route. The
    most specific handler wins, so an exception's category decides, whatever its class."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    for category, status in _STATUS.items():
        app.add_exception_handler(category, _with_status(status))
    app.add_exception_handler(NotAllowed, _not_allowed)
    app.add_exception_handler(Unavailable, _unavailable)


_STATUS: dict[type[GraphdexError], int] = {InvalidInput: 422, NotFound: 404, Conflict: 409, UpstreamFailed: 502}


def _with_status(status: int):  # -> an exception handler
    async def handler(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, GraphdexError)
        return JSONResponse({"detail": excerpt(error.described(), MAX_MESSAGE_CHARS)}, status_code=status)

    return handler


async def _not_allowed(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, NotAllowed)
    return JSONResponse({"detail": str(error)}, status_code=error.status)


async def _unavailable(request: Request, error: Exception) -> JSONResponse:
    """503, and when the dependency is only unreachable for now, a Retry-After the client (or its proxy) can honour."""
    assert isinstance(error, Unavailable)
    headers = {"Retry-After": str(max(1, math.ceil(error.retry_after)))} if error.retry_after else None
    return JSONResponse({"detail": excerpt(error.described(), MAX_MESSAGE_CHARS)}, status_code=503, headers=headers)


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    detail = [_bounded_problem(p) for p in problems[:MAX_ERRORS_LISTED]]
    if len(problems) > MAX_ERRORS_LISTED:
        detail.append({"type": "more_errors", "loc": [], "msg": f"and {len(problems) - MAX_ERRORS_LISTED:,} more problems"})
    return JSONResponse({"detail": detail}, status_code=422)


def _bounded_problem(problem: dict[str, Any]) -> dict[str, Any]:
    """One validation problem as FastAPI reports it (type, loc, msg, input, ctx), with every part bounded."""
    bounded: dict[str, Any] = {"type": excerpt(problem.get("type", "invalid")),
                               "loc": [item if isinstance(item, int) else excerpt(item) for item in problem.get("loc", ())],
                               "msg": excerpt(_message(problem), MAX_MESSAGE_CHARS)}
    if "input" in problem:
        bounded["input"] = _bounded_value(problem["input"])
    if problem.get("ctx"):
        bounded["ctx"] = {excerpt(key): _bounded_value(value) for key, value in problem["ctx"].items()}
    return bounded


def _message(problem: dict[str, Any]) -> str:
    """The problem's message; for a body that is not JSON, with what is wrong: FastAPI says only "JSON decode error",
    and puts the reason (the parser's, or the number that is not JSON) in the context."""
    message = str(problem.get("msg", ""))
    reason = (problem.get("ctx") or {}).get("error")
    if problem.get("type") == "json_invalid" and isinstance(reason, str) and reason not in message:
        return f"{message}: {reason}"
    return message


def _bounded_value(value: Any) -> Any:
    """Numbers, booleans and null as they are; anything else (text, bytes, objects) as a short excerpt."""
    if value is None or isinstance(value, (bool, float)) or (isinstance(value, int) and value.bit_length() < 512):
        return value
    if isinstance(value, (bytes, bytearray)):
        return excerpt(bytes(value[:4 * MAX_MESSAGE_CHARS]).decode("utf-8", "replace"))
    return excerpt(str(value) if isinstance(value, Exception) else value)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    headers = getattr(error, "headers", None)
    if not is_body_allowed_for_status_code(error.status_code):
        return Response(status_code=error.status_code, headers=headers)
    detail = excerpt(error.detail, MAX_MESSAGE_CHARS) if isinstance(error.detail, str) else error.detail
    return JSONResponse({"detail": detail}, status_code=error.status_code, headers=headers)
