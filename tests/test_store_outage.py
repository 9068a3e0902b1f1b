"""A two-minute Neo4j outage during ingestion is waited out: the server is really stopped (scripts/neo4j.sh) while
a batch of documents is being indexed. Meanwhile reads answer 503 with Retry-After at once (the circuit breaker),
queued documents stay queued instead of failing, and once the server is back every one of them is indexed with no
manual retry. And a workspace nobody has written to yet is served normally, not as an error."""

from __future__ import annotations

import statistics
import subprocess
import time

from fastapi.testclient import TestClient

from graphdex.api.app import create_app
from graphdex.graph.neo4j_session import CONNECT_SECONDS
from tests.conftest import NEO4J_SCRIPT
from tests.helpers import wait_until_settled

OUTAGE_SECONDS = 120


def test_a_two_minute_neo4j_outage_during_ingestion_is_waited_out(make_workspace, neo4j_server, sample_records):
    workspace = make_workspace("outage", store="neo4j", extract_workers=0, ingest_batch_documents=4)
    records = sample_records[:60]
    with TestClient(create_app(workspace=workspace)) as client:
        submitted = client.post("/documents", json={"documents": [{"title": r["title"], "text": r["text"], "source": f"outage/{r['id']}"} for r in records]})
        assert submitted.status_code == 202
        ids = [d["id"] for d in submitted.json()["documents"]]
        deadline = time.monotonic() + 120
        while client.get("/documents", params={"limit": 1}).json()["counts"]["done"] == 0:
            assert time.monotonic() < deadline, "nothing was indexed before the outage"
            time.sleep(0.05)

        subprocess.run([str(NEO4J_SCRIPT), "stop"], check=True, capture_output=True)
        probes: list[tuple[float, int, str | None]] = []
        try:
            stopped = time.monotonic()
            while time.monotonic() - stopped < OUTAGE_SECONDS:
                for method, path, body in (("get", "/health", None), ("post", "/query", {"query": "Who was Abraham Lincoln?"})):
                    began = time.monotonic()
                    response = client.request(method, path, json=body)
                    probes.append((time.monotonic() - began, response.status_code, response.headers.get("retry-after")))
                time.sleep(1)
            counts = client.get("/documents", params={"limit": 1}).json()["counts"]
        finally:
            subprocess.run([str(NEO4J_SCRIPT), "start"], check=True, capture_output=True)

        assert counts["failed"] == 0 and counts["pending"] + counts["processing"] > 0, counts
        assert {status for _, status, _ in probes} == {503}, probes
        assert all(retry and int(retry) >= 1 for _, _, retry in probes), probes
        seconds = [took for took, _, _ in probes]
        assert max(seconds) < 3 * CONNECT_SECONDS + 5, f"the slowest 503 took {max(seconds):.1f} s"
        assert statistics.median(seconds) < 0.5, f"503s took {statistics.median(seconds):.2f} s (median): the breaker is not failing fast"

        states = wait_until_settled(client, ids, timeout=300)
        assert all(s["status"] == "done" and s["chunks"] >= 1 for s in states.values()), states
        stats = client.get("/graph/stats").json()
        assert stats["vectors"]["Chunk"] == stats["nodes"]["Chunk"] and stats["nodes"]["Document"] == len(records)
        answer = client.post("/query", json={"query": records[0]["title"], "top_k": 3})
        assert answer.status_code == 200 and answer.json()["results"]


def test_a_fresh_neo4j_workspace_answers_200_before_its_first_write(make_workspace, neo4j_server):
    """The service's writer lease creates the workspace's meta node before any write: it has no version yet."""
    with TestClient(create_app(workspace=make_workspace("fresh", store="neo4j", extract_workers=0))) as client:
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["store_version"] == 0, health.text
        answer = client.post("/query", json={"query": "Who directed The Harbor Lights?"})
        assert answer.status_code == 200 and answer.json()["results"] == [], answer.text
        assert client.get("/graph/stats").json()["nodes"]["Entity"] == 0
