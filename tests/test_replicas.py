"""Query replicas: two real `graphdex serve` processes on one Neo4j workspace, a writer (A) and a query replica (B,
GRAPHDEX_INGEST=false) that forwards document requests to A. A document submitted to B is indexed by A and found by
queries to B in every mode, with its citation; deleted through B it disappears from both; B keeps nothing on disk.
And a replica without a writer URL refuses writes with a 503 that names the writer."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from graphdex.api.app import create_app
from graphdex.common.settings import Settings
from tests.conftest import FILM_DOCS, drop_neo4j_workspace
from tests.helpers import running_server

pytestmark = pytest.mark.e2e  # a writer and a replica as two real processes

MODES = ("naive", "local", "global", "hybrid", "graph")
KEY = {"X-API-Key": "replica-test-key"}
HARBOR = FILM_DOCS[0]  # "The Harbor Lights is a 1931 drama film directed by Maria Kessler..."
QUESTION = "Who directed The Harbor Lights, the 1931 drama film about a fisherman?"


@pytest.fixture(scope="module")
def replicas(neo4j_server, tmp_path_factory):
    """Writer A and replica B on one fresh Neo4j workspace, behind one API key."""
    workspace = f"test-replicas-{uuid.uuid4().hex[:8]}"
    env = {"GRAPHDEX_STORE": "neo4j", "GRAPHDEX_NEO4J_URI": neo4j_server["uri"], "GRAPHDEX_NEO4J_USER": neo4j_server["user"],
           "GRAPHDEX_NEO4J_PASSWORD": neo4j_server["password"], "GRAPHDEX_NEO4J_WORKSPACE": workspace,
           "GRAPHDEX_API_KEY": KEY["X-API-Key"], "GRAPHDEX_NEO4J_VECTORS": "neo4j"}
    root = tmp_path_factory.mktemp("replicas")
    try:
        with running_server(root / "a", **env) as writer:
            with running_server(root / "b", **env, GRAPHDEX_INGEST="false", GRAPHDEX_WRITER_URL=writer.url) as replica:
                yield writer.url, replica.url, root / "b"
    finally:
        drop_neo4j_workspace(neo4j_server, workspace)


def hits_of(url: str, mode: str) -> list[dict]:
    answer = httpx.post(f"{url}/query", json={"query": QUESTION, "mode": mode, "top_k": 10}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def eventually(check, timeout: float = 90.0):
    """The check's truthy result, retried: the replica's PageRank projection follows the writer's store version in
    the background, so graph mode sees a write a moment after the other modes."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "the replicas did not converge in time"
        time.sleep(0.5)


def settled(url: str, doc_id: str, timeout: float = 180.0) -> dict:
    return eventually(lambda: (s := httpx.get(f"{url}/documents/{doc_id}").json()).get("status") in ("done", "failed") and s, timeout)


def test_a_document_submitted_to_the_replica_is_found_by_its_queries_and_deleted_from_both(replicas):
    writer, replica, replica_dir = replicas
    body = {"documents": [{"title": d.title, "text": d.text, "source": d.source} for d in FILM_DOCS]}
    assert httpx.post(f"{replica}/documents", json=body).status_code == 401, "the writer checks the key of a forwarded write"
    submitted = httpx.post(f"{replica}/documents", json=body, headers=KEY, timeout=60)
    assert submitted.status_code == 202, submitted.text
    ids = {d["source"]: d["id"] for d in submitted.json()["documents"]}
    harbor = ids[HARBOR.source]
    for doc_id in ids.values():  # status reads on the replica are the writer's answers
        assert settled(replica, doc_id)["status"] == "done"
    assert httpx.get(f"{writer}/documents/{harbor}").json()["status"] == "done"

    for mode in MODES:
        found = eventually(lambda mode=mode: [h for h in hits_of(replica, mode) if h["doc_id"] == harbor])
        hit = found[0]
        assert hit["title"] == HARBOR.title and hit["source"] == HARBOR.source and hit["chunk_id"]
        assert "Maria Kessler" in hit["text"]
        # the writer, from the same database, answers alike
        assert [h["chunk_id"] for h in hits_of(writer, mode)][:3] == [h["chunk_id"] for h in hits_of(replica, mode)][:3], mode

    health = httpx.get(f"{replica}/health").json()
    assert health["ingest"] is False and health["queue"] is None
    assert sum(health["vectors"].values()) > 0, "the replica reads the writer's vectors from Neo4j"
    listing = httpx.get(f"{replica}/documents").json()  # the writer's queue, forwarded
    assert {d["id"] for d in listing["documents"]} == set(ids.values())

    deleted = httpx.delete(f"{replica}/documents/{harbor}", headers=KEY)
    assert deleted.status_code == 202, deleted.text
    eventually(lambda: httpx.get(f"{writer}/documents/{harbor}").status_code == 404)
    assert httpx.get(f"{replica}/documents/{harbor}").status_code == 404
    for url in (writer, replica):
        for mode in MODES:
            eventually(lambda url=url, mode=mode: all(h["doc_id"] != harbor for h in hits_of(url, mode)))

    kept = [p.relative_to(replica_dir) for p in replica_dir.rglob("*") if p.is_file()]
    assert not [p for p in kept if "vector" in str(p) or p.suffix in (".bin", ".sqlite")], kept


def test_a_replica_without_a_writer_url_refuses_writes_naming_the_writer(make_workspace, neo4j_server):
    workspace = make_workspace("replica", store="neo4j", ingest=False)
    with TestClient(create_app(workspace=workspace)) as client:
        refused = client.post("/documents", json={"documents": [{"title": "T", "text": "Some text."}]})
        assert refused.status_code == 503 and "query replica" in refused.json()["detail"] and "GRAPHDEX_WRITER_URL" in refused.json()["detail"]
        assert client.delete("/documents/doc-x").status_code == 503
        assert client.get("/documents/doc-x").status_code == 503, "an unknown status is the writer's to tell"
        assert client.post("/workspaces", json={"name": "other"}).status_code == 503
        assert client.get("/workspaces/other/health").status_code == 503
        assert client.post("/query", json={"query": "anything", "mode": "naive"}).status_code == 200
        health = client.get("/health").json()
        assert health["ingest"] is False and health["queue"] is None
    assert not list(Path(workspace.settings.data_dir).rglob("*.sqlite")), "a replica has no queue"


@pytest.mark.parametrize("settings", [{"store": "embedded"}, {"store": "neo4j", "neo4j_vectors": "local"}])
def test_a_replica_needs_everything_in_neo4j(settings):
    with pytest.raises(ValueError, match="GRAPHDEX_NEO4J_VECTORS=neo4j"):
        Settings(ingest=False, **settings)
