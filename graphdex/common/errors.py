"""graphdex's exceptions: one root, and a category for whose problem a failure is.

Every transport (REST, MCP, the CLI) maps the categories once, so a new exception is reported the right way on all
three as soon as it names its category, and nothing of graphdex's own escapes as an unexplained 500 or traceback.
Each category keeps the builtin base callers already catch (``ValueError`` for a bad input, ``LookupError`` for
something missing, ``RuntimeError`` for a failing dependency).
"""

from __future__ import annotations


class GraphdexError(Exception):
    """The root. Raised as itself it is graphdex's own fault (a 500 on REST)."""

    #: What failed, put before the message where a caller reads it without context ("the graph store is unavailable")
    summary: str = ""

    def described(self) -> str:
        """The message for a caller: the summary, then what went wrong."""
        return f"{self.summary}: {self}" if self.summary else str(self)


class InvalidInput(GraphdexError, ValueError):
    """The caller's mistake: a document, query, name or setting graphdex cannot take as given (REST 422)."""


class NotFound(GraphdexError, LookupError):
    """What the caller named does not exist (REST 404)."""


class Conflict(GraphdexError):
    """The request contradicts the current state: a workspace that exists already, or is in use (REST 409)."""


class NotAllowed(GraphdexError):
    """The keys do not allow the request: ``status`` is 401 (no valid key) or 403 (a valid key, not for this)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Unavailable(GraphdexError, RuntimeError):
    """Something graphdex depends on is not working (the graph store, a cluster, a model): the request may succeed
    later (REST 503, with Retry-After when ``retry_after`` is known)."""

    retry_after: float | None = None


class UpstreamFailed(Unavailable):
    """A service graphdex called answered with a failure (the language model): REST 502."""
