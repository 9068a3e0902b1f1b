"""Keys sent in URLs by mistake never reach the logs: which query parameters are redacted, and how a log record of
uvicorn's access log or of httpx (a replica's forwarded requests) comes out. The real `graphdex serve` process is
tested in test_live_server.py."""

from __future__ import annotations

import logging

import httpx
import pytest
from uvicorn.logging import AccessFormatter

from graphdex.api.logs import KEY_LIKE_PARAMETERS, URL_LOGGERS, RedactKeys, redact_query, serve_log_config


@pytest.mark.parametrize("name", [*KEY_LIKE_PARAMETERS, "API_KEY", "Api-Key", "x-api-key", "client_secret", "refresh_token", "api%5Fkey"])
def test_every_key_like_parameter_is_redacted_whatever_its_case(name):
    assert redact_query(f"/documents?limit=5&{name}=SECRET123&offset=0") == f"/documents?limit=5&{name}=[redacted]&offset=0"
    assert redact_query(f"http://writer:8000/query?{name}=SECRET123==") == f"http://writer:8000/query?{name}=[redacted]"


@pytest.mark.parametrize("text", ["/graph/entities?q=key&limit=5", "/graph/subgraph?entity=ent-1&depth=2", "/documents/api_key=x",
                                  "/query?monkey=1&keys=2&tokenize=3", "no query string at all"])
def test_other_parameters_and_paths_are_left_as_they_are(text):
    assert redact_query(text) == text


def test_uvicorn_access_and_httpx_records_are_redacted_before_any_handler_formats_them():
    access = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "DELETE", "/documents/doc-x?api_key=SECRET123", "1.1", 401), None)
    assert RedactKeys().filter(access)
    formatted = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(access)
    assert formatted == '127.0.0.1:5000 - "DELETE /documents/doc-x?api_key=[redacted] HTTP/1.1" 401 Unauthorized'

    forwarded = logging.LogRecord("httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s %d %s"',
                                  ("POST", httpx.URL("http://writer/documents?token=SECRET123"), "HTTP/1.1", 401, "Unauthorized"), None)
    assert RedactKeys().filter(forwarded)
    assert forwarded.getMessage() == 'HTTP Request: POST http://writer/documents?token=[redacted] "HTTP/1.1 401 Unauthorized"'


def test_serve_log_config_puts_the_filter_on_every_logger_that_writes_urls():
    config = serve_log_config()
    assert all(config["loggers"][name]["filters"] == ["redact_keys"] for name in URL_LOGGERS)
    assert config["loggers"]["uvicorn.access"]["handlers"] == ["access"]  # uvicorn's own configuration otherwise
