"""One error model: graphdex's exceptions fall into categories (graphdex/common/errors.py), and each transport maps a
category once. Here the REST mapping, on a bare app with the service's handlers, for an exception of each kind."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from graphdex.api.access import Refused
from graphdex.api.errors import add_error_handlers
from graphdex.api.lifecycle import DefaultWorkspace, UnknownWorkspace
from graphdex.api.replica import NotTheWriter
from graphdex.common.embedder import EmbedderError
from graphdex.common.errors import GraphdexError
from graphdex.common.llm import LLMError
from graphdex.common.ray_cluster import ClusterError
from graphdex.graph.store import StoreError, StoreUnavailable
from graphdex.ingest.documents import DocumentError
from graphdex.query.modes import QueryError

CASES = [
    (QueryError("the query is empty"), 422, "the query is empty", None),
    (DocumentError("notes.pdf: encrypted"), 422, "notes.pdf: encrypted", None),
    (UnknownWorkspace("no workspace 'x'"), 404, "no workspace 'x'", None),
    (DefaultWorkspace("the default workspace cannot be deleted"), 409, "the default workspace cannot be deleted", None),
    (Refused(403, "this key is not for workspace 'x'"), 403, "this key is not for workspace 'x'", None),
    (StoreError("locked by another writer"), 503, "the graph store is unavailable: locked by another writer", None),
    (StoreUnavailable("Neo4j restarting", retry_after=2.5), 503, "the graph store is unavailable: Neo4j restarting", "3"),
    (NotTheWriter("a query replica: send writes to the writer"), 503, "a query replica: send writes to the writer", None),
    (ClusterError("no Ray cluster at 10.0.0.1:6379"), 503, "no Ray cluster at 10.0.0.1:6379", None),
    (EmbedderError("the embedding model is not installed"), 503, "the embedding model is not installed", None),
    (LLMError("429 after 4 retries"), 502, "the language model failed: 429 after 4 retries", None),
]


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/raise/{case}")
    def raise_case(case: int) -> None:
        raise CASES[case][0] if case >= 0 else GraphdexError("an invariant broke")

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("case", range(len(CASES)), ids=[type(c[0]).__name__ for c in CASES])
def test_each_category_has_its_status_and_message(client, case):
    _, status, detail, retry_after = CASES[case]
    response = client.get(f"/raise/{case}")
    assert (response.status_code, response.json()["detail"], response.headers.get("retry-after")) == (status, detail, retry_after)


def test_the_root_itself_is_graphdex_s_own_fault(client):
    assert client.get("/raise/-1").status_code == 500
