"""A Neo4j outage during ingestion is waited out: the server is really stopped (scripts/neo4j.sh) while documents
are queued, they stay in the queue instead of failing, and once it is back every one of them is indexed with no
manual retry."""

from __future__ import annotations

import subprocess
import time

from fastapi.testclient import TestClient

from graphdex.api.app import create_app
from graphdex.common.ids import document_id
from tests.conftest import FILM_DOCS, NEO4J_SCRIPT
from tests.test_api import wait_until_settled


def test_documents_submitted_while_neo4j_is_down_are_indexed_once_it_is_back(make_workspace, neo4j_server):
    workspace = make_workspace("outage", store="neo4j", extract_workers=0)
    with TestClient(create_app(workspace=workspace)) as client:
        subprocess.run([str(NEO4J_SCRIPT), "stop"], check=True, capture_output=True)
        try:
            payload = {"documents": [{"title": d.title, "text": d.text, "source": d.source} for d in FILM_DOCS]}
            assert client.post("/documents", json=payload).status_code == 202
            ids = [document_id(d.source) for d in FILM_DOCS]
            time.sleep(8)  # several attempts against the stopped server
            during = {i: client.get(f"/documents/{i}").json()["status"] for i in ids}
            assert set(during.values()) <= {"pending", "processing"}, during
        finally:
            subprocess.run([str(NEO4J_SCRIPT), "start"], check=True, capture_output=True)
        states = wait_until_settled(client, ids, timeout=240)
        assert all(s["status"] == "done" and s["chunks"] >= 1 for s in states.values()), states
        answer = client.post("/query", json={"query": "Where was the director of The Harbor Lights born?", "top_k": 3})
        assert answer.status_code == 200 and "Maria Kessler" in [hit["title"] for hit in answer.json()["results"]]
