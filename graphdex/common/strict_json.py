"""JSON text read as RFC 8259 defines it, wherever graphdex reads JSON from a user (request bodies, uploaded and
ingested .json/.jsonl files).

Python's json module also reads NaN, Infinity and -Infinity, and reads a number beyond the range of a 64-bit float
(1e400) as infinity. None of these is a number a client can be given back: the embedded store writes them as null,
and parsers other than Python's (JavaScript's JSON.parse, orjson) refuse them. So they are refused like any other text
that is not JSON: json.JSONDecodeError, naming the number, at its position.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any


class _NotAJsonNumber(ValueError):
    """Raised from inside the parser, which does not know where it is: `loads` finds the place."""

    def __init__(self, literal: str, reason: str) -> None:
        super().__init__(reason)
        self.literal = literal


# Outside its strings a JSON text is numbers, the literals true/false/null and punctuation. Skipping whole strings,
# the first token equal to the refused one is where the parser stopped (an earlier equal one would have been refused).
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?[0-9][0-9.eE+-]*')
_SHOWN_DIGITS = 40


def loads(text: str) -> Any:
    """``json.loads``, except that NaN, Infinity, -Infinity and numbers that overflow a 64-bit float raise
    json.JSONDecodeError (other failures of Python's parser, RecursionError and ValueError, are left to the caller)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotAJsonNumber as refused:
        position = next((token.start() for token in _TOKENS.finditer(text) if token.group() == refused.literal), 0)
        raise json.JSONDecodeError(str(refused), text, position) from None


def _refuse_constant(literal: str) -> float:
    raise _NotAJsonNumber(literal, f"{literal} is not JSON: JSON numbers are finite; send null, or the value as a string")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        shown = literal if len(literal) <= _SHOWN_DIGITS else literal[: _SHOWN_DIGITS - 1] + "…"
        raise _NotAJsonNumber(literal, f"{shown} is beyond the range of a 64-bit float (about ±1.8e308) "
                                       "and would be read as infinity; send it as a string")
    return value
