"""Keys kept out of the service's logs.

A client may put its API key in the URL (``?api_key=...``) by mistake. It is refused (keys go in the X-API-Key header),
but uvicorn's access log writes every request line with its query string, and so would httpx's log of the requests a
query replica forwards: the key would then sit in log files and log collectors, readable by whoever reads logs. The
filter below rewrites the value of every key-like query parameter before any handler formats the record; the name
stays, so the log still shows what the client did.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote_plus

from uvicorn.config import LOGGING_CONFIG

# compared case-insensitively, with '-' read as '_'; a name ending in _<one of these> (x_api_key, client_secret,
# refresh_token) is key-like too
KEY_LIKE_PARAMETERS = ("api_key", "apikey", "key", "token", "access_token", "password", "secret")
_KEY_LIKE_SUFFIXES = tuple(f"_{name}" for name in KEY_LIKE_PARAMETERS)
REDACTED = "[redacted]"

# a query parameter name=value, wherever a URL appears in the text (request lines, full URLs)
_QUERY_PARAMETER = re.compile(r"(?<=[?&])([^=&#\s\"]+)=([^&#\s\"]*)")

# the loggers that write request URLs: uvicorn's access log, its error log (rejected WebSocket paths, with their query
# string), and httpx (a query replica's requests to the writer, at INFO)
URL_LOGGERS = ("uvicorn.access", "uvicorn.error", "httpx")


def key_like(name: str) -> bool:
    """Whether a query parameter's name (as sent, maybe percent-encoded) looks like it carries a secret."""
    normal = unquote_plus(name).lower().replace("-", "_")
    return normal in KEY_LIKE_PARAMETERS or normal.endswith(_KEY_LIKE_SUFFIXES)


def redact_query(text: str) -> str:
    """The text with the value of every key-like query parameter replaced by [redacted]."""
    if "=" not in text:
        return text
    return _QUERY_PARAMETER.sub(lambda match: f"{match[1]}={REDACTED}" if key_like(match[1]) else match[0], text)


class RedactKeys(logging.Filter):
    """Redacts key-like query parameters from a record's message and arguments. On a logger, it runs before every
    handler of that logger, whatever their format (uvicorn's access formatter reads the request line from the
    arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def _redacted(arg: object) -> object:
    """An argument as %s formats it, redacted; the argument itself when there is nothing to redact (numbers stay
    numbers, for %d)."""
    if arg is None or isinstance(arg, (int, float)):
        return arg
    text = str(arg)
    redacted = redact_query(text)
    return arg if redacted == text else redacted


def serve_log_config() -> dict[str, Any]:
    """The logging configuration `graphdex serve` gives uvicorn: uvicorn's own, with RedactKeys on every logger that
    writes request URLs."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_keys": {"()": RedactKeys}}
    for name in URL_LOGGERS:
        config["loggers"].setdefault(name, {})["filters"] = ["redact_keys"]
    return config
