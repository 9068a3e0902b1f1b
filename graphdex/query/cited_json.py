"""An answer written as JSON statements that each name their sources, read back into prose with [n] citations while
it streams.

Why a schema: a model too small to follow "cite the sources like [1]" (or one that drifts into copying the prompt)
still fills in a JSON schema whose source numbers can only be those of the context, when the server enforces the
schema as a grammar (OpenAI structured outputs, llama.cpp, vLLM, Ollama). Every citation is then one the model chose,
from the sources it was given. Why read it incrementally: users still see the answer appear as it is written, as
prose, not as JSON; and an answer cut at the token limit keeps what it completed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_STATEMENTS = 8
MAX_STATEMENT_CHARS = 300  # a statement is a sentence or two; the bound is what lets a looping model reach its sources
MAX_SOURCES_PER_STATEMENT = 3

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
# brackets are reserved for citations in the prose: a statement's own "[2]" would read as one the structure never made
_RESERVED = str.maketrans("[]", "()")


def answer_schema(sources: int) -> dict[str, Any]:
    """The JSON schema of a cited answer over ``sources`` numbered sources (1..sources)."""
    statement = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_STATEMENT_CHARS},
            "sources": {"type": "array", "items": {"type": "integer", "enum": list(range(1, sources + 1))},
                        "minItems": 1, "maxItems": min(MAX_SOURCES_PER_STATEMENT, sources)},
        },
        "required": ["text", "sources"],
        "additionalProperties": False,
    }
    return {"type": "object", "properties": {"statements": {"type": "array", "items": statement, "minItems": 1, "maxItems": MAX_STATEMENTS}},
            "required": ["statements"], "additionalProperties": False}


@dataclass
class _Frame:
    """One open JSON container: an object (with the key whose value is being read) or an array."""

    is_object: bool
    key: str | None = None
    expects_key: bool = False


@dataclass
class CitedJsonReader:
    """Turns the JSON of :func:`answer_schema`, fed a piece at a time, into prose: each statement's text as it
    arrives, then its citations as ``[n]`` when its source list closes. Numbers outside 1..sources are ignored (a
    provider that does not enforce the schema may write them), and so is anything that is not in the schema's places.
    """

    sources: int
    cited: list[int] = field(default_factory=list)  # in order of first citation
    _stack: list[_Frame] = field(default_factory=list)
    _in_string: bool = False
    _string_is_key: bool = False
    _string: list[str] = field(default_factory=list)
    _escape: str | None = None  # the escape being read: "" after a backslash, then the hex digits of a \\u escape
    _scalar: list[str] = field(default_factory=list)
    _statement_numbers: list[int] = field(default_factory=list)
    _written = False  # prose already given: the next statement is set apart from it by a space

    def feed(self, delta: str) -> str:
        out: list[str] = []
        for char in delta:
            if self._in_string:
                self._string_char(char, out)
            elif char == '"':
                self._end_scalar()
                self._in_string, self._string = True, []
                self._string_is_key = bool(self._stack and self._stack[-1].is_object and self._stack[-1].expects_key)
                if self._in_text() and self._written:
                    out.append(" ")
            elif char in "{[":
                self._end_scalar()
                self._stack.append(_Frame(is_object=char == "{", expects_key=char == "{"))
                if self._in_sources():
                    self._statement_numbers = []
            elif char in "}]":
                self._end_scalar()
                if self._in_sources():
                    out.append(self._close_sources())
                if self._stack:
                    self._stack.pop()
            elif char == ":":
                self._end_scalar()
            elif char == ",":
                self._end_scalar()
                if self._stack and self._stack[-1].is_object:
                    self._stack[-1].expects_key, self._stack[-1].key = True, None
            elif not char.isspace():
                self._scalar.append(char)
            else:
                self._end_scalar()
        return "".join(out)

    def _path(self) -> list[str | None]:
        return [frame.key if frame.is_object else "[]" for frame in self._stack]

    def _in_text(self) -> bool:
        """Inside the value of a statement's "text" (the string being opened or read)."""
        path = self._path()
        return len(path) == 3 and path[0] == "statements" and path[1] == "[]" and path[2] == "text" and not self._string_is_key

    def _in_sources(self) -> bool:
        path = self._path()
        return len(path) == 4 and path[0] == "statements" and path[1] == "[]" and path[2] == "sources" and path[3] == "[]"

    def _string_char(self, char: str, out: list[str]) -> None:
        if self._escape is not None:
            if self._escape == "" and char != "u":
                decoded = _ESCAPES.get(char, char)
                self._escape = None
            else:
                self._escape += char
                if len(self._escape) < 5:  # "u" and four hex digits
                    return
                try:
                    decoded = chr(int(self._escape[1:], 16))
                except ValueError:
                    decoded = ""
                self._escape = None
        elif char == "\\":
            self._escape = ""
            return
        elif char == '"':
            self._in_string = False
            if self._string_is_key:
                self._stack[-1].key, self._stack[-1].expects_key = "".join(self._string), False
            return
        else:
            decoded = char
        self._string.append(decoded)
        if not self._string_is_key and self._in_text():
            out.append(decoded.translate(_RESERVED))
            self._written = self._written or bool(decoded.strip())

    def _end_scalar(self) -> None:
        if not self._scalar:
            return
        token, self._scalar = "".join(self._scalar), []
        if self._in_sources():
            try:
                number = int(float(token))
            except ValueError:
                return
            if 1 <= number <= self.sources and number not in self._statement_numbers:
                self._statement_numbers.append(number)

    def _close_sources(self) -> str:
        for number in self._statement_numbers:
            if number not in self.cited:
                self.cited.append(number)
        marks = "".join(f"[{n}]" for n in self._statement_numbers)
        self._statement_numbers = []
        if not marks:
            return ""
        written, self._written = self._written, True
        return f" {marks}" if written else marks
