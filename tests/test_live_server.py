"""A real `graphdex serve` process on 127.0.0.1: the end-to-end HTTP path, restart-resume after a crash, and a
schemathesis run over the OpenAPI schema that must produce no server error."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from graphdex.ingest.documents import SourceDocument
from tests.conftest import FILM_DOCS, SAMPLE
from tests.helpers import assert_same, clean_build, running_server, snapshot, wait_settled

pytestmark = pytest.mark.e2e  # a real `graphdex serve` process with its real models

EXAMPLES_PER_OPERATION = 40


def test_upload_poll_query_delete_over_http(tmp_path):
    with running_server(tmp_path / "data") as server:
        url = server.url
        files = [("files", (f"{d.title}.md", f"# {d.title}\n\n{d.text}".encode(), "text/markdown")) for d in FILM_DOCS]
        response = httpx.post(f"{url}/documents", files=files)
        assert response.status_code == 202, response.text
        ids = [d["id"] for d in response.json()["documents"]]
        assert all(s["status"] == "done" for s in wait_settled(url, ids).values())
        question = {"query": "Where was the director of The Harbor Lights born?", "mode": "graph", "top_k": 3}
        titles = [hit["title"] for hit in httpx.post(f"{url}/query", json=question).json()["results"]]
        assert "Maria Kessler" in titles
        kessler = next(i for i, d in zip(ids, FILM_DOCS) if d.title == "Maria Kessler")
        assert httpx.delete(f"{url}/documents/{kessler}").status_code == 202
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/documents/{kessler}").status_code != 404:
            assert time.monotonic() < deadline, "the acknowledged delete was not carried out"
            time.sleep(0.2)
        titles = [hit["title"] for hit in httpx.post(f"{url}/query", json=question).json()["results"]]
        assert "Maria Kessler" not in titles


def test_restart_resumes_interrupted_ingestion_and_ends_equal_to_a_cli_build(tmp_path, make_workspace):
    """The service killed (SIGKILL) while it works through a queue of submissions, then restarted: it finishes the
    queue, and the index equals a CLI build of the same documents, vector for vector (the community layer, which
    depends on the history of writes, valid)."""
    records = [json.loads(line) for line in SAMPLE.read_text().splitlines()[:40]]
    payload = {"documents": [{"title": r["title"], "text": r["text"], "source": f"sample#{r['id']}"} for r in records]}
    data_dir = tmp_path / "data"
    with running_server(data_dir, GRAPHDEX_INGEST_BATCH_DOCUMENTS="4") as server:
        url = server.url
        ids = [d["id"] for d in httpx.post(f"{url}/documents", json=payload).json()["documents"]]
        deadline = time.monotonic() + 120
        while httpx.get(f"{url}/documents", params={"status": "done", "limit": 1}).json()["total"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # crash: no shutdown, no cleanup
        server.process.kill()
        server.process.wait()
    with sqlite3.connect(data_dir / "queue" / "jobs.sqlite") as db:
        unfinished = db.execute("SELECT count(*) FROM jobs WHERE status IN ('pending', 'processing')").fetchone()[0]
    assert unfinished > 0, "the crash came too late to leave work behind"
    with running_server(data_dir, GRAPHDEX_INGEST_BATCH_DOCUMENTS="16") as server:
        url = server.url
        states = wait_settled(url, ids)
        assert all(s["status"] == "done" for s in states.values()), [s for s in states.values() if s["status"] != "done"]
        stats = httpx.get(f"{url}/graph/stats").json()
        assert stats["nodes"]["Document"] == len(records)
        assert stats["vectors"]["Chunk"] == stats["nodes"]["Chunk"]
    documents = [SourceDocument(d["source"], d["title"], d["text"]) for d in payload["documents"]]
    reference = clean_build(make_workspace, "embedded", documents, tmp_path, {})
    assert_same(snapshot(make_workspace("data")), reference, communities="valid")


def test_keys_sent_in_the_query_string_never_reach_the_logs(tmp_path):
    """A client that puts its key in the URL (?api_key=...) is refused, and the access log shows that it tried, not
    the key: key-like query parameters are redacted on the way to the log, in the logging `graphdex serve` sets up."""
    with running_server(tmp_path / "data", GRAPHDEX_API_KEY="the-real-key", GRAPHDEX_LOG_LEVEL="INFO") as server:
        refused = httpx.delete(f"{server.url}/documents/doc-x", params={"api_key": "SECRET123"})
        assert refused.status_code == 401
        assert httpx.get(f"{server.url}/documents?API_KEY=SECRET456&Token=SECRET789&limit=5").status_code == 200
    logged = server.log.read_text()
    assert "SECRET" not in logged, logged[-2000:]
    assert "/documents/doc-x?api_key=[redacted] HTTP/1.1\" 401" in logged, logged[-2000:]
    assert "/documents?API_KEY=[redacted]&Token=[redacted]&limit=5 HTTP/1.1\" 200" in logged, logged[-2000:]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("schemathesis") / "data") as server:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_no_server_errors_anywhere_in_the_api(api_schema):
    """Every operation, with schemathesis-generated valid and invalid inputs: never a 5xx."""
    tested: list[str] = []
    statuses: list[int] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case):
            response = case.call_and_validate(checks=[schemathesis.checks.not_a_server_error], timeout=30)
            statuses.append(response.status_code)

        no_server_error()
        tested.append(operation.label)
    assert len(tested) >= 12, tested
    assert len(statuses) >= 10 * len(tested), "schemathesis sent too few requests to mean anything"
    assert {200, 202, 404, 422} <= set(statuses), sorted(set(statuses))


def test_queries_are_answered_while_documents_ingest(tmp_path):
    records = [json.loads(line) for line in SAMPLE.read_text().splitlines()[:60]]
    payload = {"documents": [{"title": r["title"], "text": r["text"], "source": f"sample#{r['id']}"} for r in records]}
    with running_server(tmp_path / "data", GRAPHDEX_INGEST_BATCH_DOCUMENTS="4") as server:
        url = server.url
        httpx.post(f"{url}/documents", json={"documents": [{"title": d.title, "text": d.text, "source": d.source} for d in FILM_DOCS]})
        wait_settled(url, [d["id"] for d in httpx.get(f"{url}/documents").json()["documents"]])
        ids = [d["id"] for d in httpx.post(f"{url}/documents", json=payload).json()["documents"]]
        answered_during_ingestion = 0
        while True:
            counts = httpx.get(f"{url}/documents", params={"limit": 1}).json()["counts"]
            busy = counts["pending"] + counts["processing"] > 0
            response = httpx.post(f"{url}/query", json={"query": "Who directed The Harbor Lights?", "mode": "hybrid", "top_k": 3}, timeout=30)
            assert response.status_code == 200
            assert response.json()["results"][0]["title"] in {"The Harbor Lights", "Maria Kessler"}
            if not busy:
                break
            answered_during_ingestion += 1
        assert answered_during_ingestion >= 3, "queries must not wait for the whole ingestion"
        assert all(s["status"] == "done" for s in wait_settled(url, ids).values())
