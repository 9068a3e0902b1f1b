"""The REST API through FastAPI's TestClient: the document lifecycle, queries, graph endpoints, and clear 4xx errors."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from graphdex.api.app import create_app
from graphdex.api.layout import DEFAULT_WORKSPACE
from graphdex.common.ids import document_id
from graphdex.graph.model import EdgeType, NodeType
from tests.conftest import FILM_DOCS, as_documents
from tests.helpers import NOT_JSON_NUMBERS, HeldWorker, assert_same, assert_valid_communities, clean_build, snapshot, wait_until_settled


def wait_until_deleted(client: TestClient, doc_id: str, timeout: float = 120.0) -> None:
    """A delete is acknowledged with 202 and carried out after the current ingestion batch: then the id is unknown."""
    deadline = time.monotonic() + timeout
    while (response := client.get(f"/documents/{doc_id}")).status_code != 404:
        assert response.status_code == 200 and response.json()["status"] in ("deleting", "done"), response.text
        assert time.monotonic() < deadline, f"{doc_id} still not deleted"
        time.sleep(0.1)


def film_payload() -> dict:
    return {"documents": [{"title": d.title, "text": d.text, "source": d.source} for d in FILM_DOCS]}


@pytest.fixture
def client(make_workspace):
    workspace = make_workspace("api", extract_workers=0, api_key="secret-key", max_request_bytes=200_000)
    with TestClient(create_app(workspace=workspace)) as client:
        client.headers["X-API-Key"] = "secret-key"
        client.workspace = workspace
        yield client


def test_document_lifecycle_and_query(client):
    response = client.post("/documents", json=film_payload())
    assert response.status_code == 202
    submitted = response.json()["documents"]
    assert [d["id"] for d in submitted] == [document_id(d.source) for d in FILM_DOCS]
    assert {d["status"] for d in submitted} <= {"pending", "processing", "done"}
    states = wait_until_settled(client, [d["id"] for d in submitted])
    assert all(s["status"] == "done" and s["chunks"] >= 1 for s in states.values()), states

    answer = client.post("/query", json={"query": "Where was the director of The Harbor Lights born?", "mode": "graph", "top_k": 3})
    assert answer.status_code == 200
    body = answer.json()
    assert body["answer"] is None
    assert "Maria Kessler" in [hit["title"] for hit in body["results"]]
    assert all(set(hit) >= {"text", "doc_id", "title", "chunk_id", "score"} for hit in body["results"])
    # what led to each passage: nodes linked to that chunk in the graph (entities it mentions, relations it evidences)
    kessler_hit = next(hit for hit in body["results"] if hit["title"] == "Maria Kessler")
    assert "Maria Kessler" in [n["name"] for n in kessler_hit["via"]], kessler_hit["via"]
    for hit in body["results"]:
        edges = client.workspace.store.edges_of(hit["chunk_id"], [EdgeType.MENTIONS, EdgeType.EVIDENCES])
        linked = {e.target if e.source == hit["chunk_id"] else e.source for e in edges}
        assert {n["id"] for n in hit["via"]} <= linked and len(hit["via"]) <= 6

    listed = client.get("/documents", params={"status": "done"}).json()
    assert listed["total"] == len(FILM_DOCS) and listed["counts"]["done"] == len(FILM_DOCS)

    kessler = document_id("people/kessler.md")
    deleted = client.delete(f"/documents/{kessler}")
    assert deleted.status_code == 202 and deleted.json()["status"] == "deleting" and deleted.json()["was"] == "done"
    assert deleted.json()["chunks"] == 1
    wait_until_deleted(client, kessler)
    again = client.post("/query", json={"query": "Where was the director of The Harbor Lights born?", "mode": "graph", "top_k": 3}).json()
    assert "Maria Kessler" not in [hit["title"] for hit in again["results"]]


def test_resubmitting_unchanged_documents_changes_nothing(client):
    ids = [d["id"] for d in client.post("/documents", json=film_payload()).json()["documents"]]
    wait_until_settled(client, ids)
    version = client.get("/health").json()["store_version"]
    ids = [d["id"] for d in client.post("/documents", json=film_payload()).json()["documents"]]
    states = wait_until_settled(client, ids)
    assert all(s["status"] == "done" for s in states.values())
    assert client.get("/health").json()["store_version"] == version


def test_multipart_upload_of_files(client):
    files = [("files", ("notes.md", b"# Lake Bled\nLake Bled is a lake in Slovenia near Ljubljana.", "text/markdown")),
             ("files", ("more.jsonl",
                        json.dumps({"id": "a1", "title": "Ljubljana", "text": "Ljubljana is the capital of Slovenia."}).encode(), "application/json"))]
    response = client.post("/documents", files=files)
    assert response.status_code == 202, response.text
    ids = [d["id"] for d in response.json()["documents"]]
    assert len(ids) == 2
    states = wait_until_settled(client, ids)
    assert {s["title"] for s in states.values()} == {"Lake Bled", "Ljubljana"}
    assert client.get("/graph/entities", params={"q": "slovenia"}).json()["entities"]


@pytest.mark.e2e
def test_graph_endpoints(client):
    wait_until_settled(client, [d["id"] for d in client.post("/documents", json=film_payload()).json()["documents"]])
    found = client.get("/graph/entities", params={"q": "kessler"}).json()["entities"]
    kessler = next(e for e in found if e["name"] == "Maria Kessler")
    entity = client.get(f"/graph/entities/{kessler['id']}").json()
    assert entity["entity"]["type"] == "PERSON" and entity["neighbours"]
    sub = client.get("/graph/subgraph", params={"entity": kessler["id"], "depth": 2, "limit": 10}).json()
    assert 1 < len(sub["nodes"]) <= 10 and sub["edges"]  # depth 2 from one entity reaches more than it
    assert {n["depth"] for n in sub["nodes"]} <= {0, 1, 2}
    # the entity itself at the centre, and what she is linked to one step away
    assert {"id": kessler["id"], "type": "Entity", "name": "Maria Kessler", "label": "Person", "depth": 0} in sub["nodes"]
    assert any(n["depth"] == 1 for n in sub["nodes"])
    shown = {n["id"] for n in sub["nodes"]}
    assert all(e["source"] in shown and e["target"] in shown for e in sub["edges"]), "edges only among the nodes shown"
    stats = client.get("/graph/stats").json()
    assert stats["nodes"]["Document"] == len(FILM_DOCS) and stats["queue"]["done"] == len(FILM_DOCS)
    from graphdex.graph.model import NodeType

    community_id = sorted(client.workspace.store.node_ids(NodeType.COMMUNITY))[0]
    community = client.get(f"/graph/communities/{community_id}").json()
    assert community["size"] >= 3 and community["label"]

    # any node, with its strongest links and the chunks that support it (what the web UI's explorer opens)
    node = client.get(f"/graph/nodes/{kessler['id']}", params={"neighbours": 2, "chunks": 2}).json()
    assert node["node"]["name"] == "Maria Kessler" and node["node"]["label"] == "Person" and node["node"]["properties"]["type"] == "PERSON"
    assert len(node["neighbours"]) == 2 <= node["neighbour_count"] and all(n["edge"]["type"] in ("RELATED_TO", "IN_COMMUNITY") for n in node["neighbours"])
    mentioning = {e.source for e in client.workspace.store.edges_of(kessler["id"], [EdgeType.MENTIONS])}
    assert node["chunks"] and {c["chunk_id"] for c in node["chunks"]} <= mentioning and all(c["title"] and c["text"] for c in node["chunks"])
    chunk = client.get(f"/graph/nodes/{node['chunks'][0]['chunk_id']}").json()
    assert chunk["node"]["type"] == "Chunk" and [c["chunk_id"] for c in chunk["chunks"]] == [node["chunks"][0]["chunk_id"]]
    assert kessler["id"] in {n["id"] for n in chunk["neighbours"]}, "a chunk links to the entities it mentions"
    assert client.get(f"/graph/nodes/{community_id}").json()["neighbours"], "a community links to its members"
    missing = client.get("/graph/nodes/no-such-node")
    assert missing.status_code == 404 and "no-such-node" in missing.json()["detail"]


@pytest.mark.parametrize("request_args, status, message", [
    ({"json": {"documents": []}}, 422, "documents"),
    ({"json": {"documents": [{"title": "x", "text": "   "}]}}, 422, "blank"),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "json"),
    ({"files": [("files", ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"))]}, 422, "unsupported file type"),
    ({"files": [("files", ("binary.txt", b"abc\x00def", "text/plain"))]}, 422, "binary"),
    ({"files": [("files", ("latin1.txt", "café".encode("latin-1"), "text/plain"))]}, 422, "UTF-8"),
    ({"files": [("files", ("empty.md", b"  \n", "text/markdown"))]}, 422, "empty"),
    ({"content": b"x" * 300_000, "headers": {"content-type": "application/json"}}, 413, "larger than the limit"),
    ({"content": b"text", "headers": {"content-type": "text/plain"}}, 415, "content type"),
])
def test_bad_submissions_get_clear_4xx(client, request_args, status, message):
    response = client.post("/documents", **request_args)
    assert response.status_code == status, response.text
    assert message.lower() in response.text.lower()


def test_other_user_mistakes_are_4xx(client):
    assert client.get("/documents/doc-unknown").status_code == 404
    assert client.delete("/documents/doc-unknown").status_code == 404
    assert client.post("/documents/doc-unknown/retry").status_code == 404
    assert client.get("/graph/entities/ent-unknown").status_code == 404
    assert client.get("/graph/communities/com-unknown").status_code == 404
    assert client.get("/graph/subgraph", params={"entity": "ent-unknown"}).status_code == 404
    assert client.post("/query", json={"query": "x", "mode": "fast"}).status_code == 422
    assert client.post("/query", json={"query": "", "mode": "naive"}).status_code == 422
    assert client.post("/query", json={"query": "x", "top_k": 0}).status_code == 422
    assert client.get("/documents", params={"status": "lost"}).status_code == 422
    assert client.get("/documents", params={"offset": 10**30}).status_code == 422  # found by schemathesis: was a 500


def test_api_key_guards_writes(client):
    anonymous = {"X-API-Key": ""}
    assert client.post("/documents", json=film_payload(), headers=anonymous).status_code == 401
    assert client.delete("/documents/doc-x", headers=anonymous).status_code == 401
    assert client.post("/query", json={"query": "anything"}, headers=anonymous).status_code == 200  # reads stay open by default
    assert client.get("/health", headers=anonymous).json()["status"] == "ok"


def test_token_budget_limits_the_context(client):
    wait_until_settled(client, [d["id"] for d in client.post("/documents", json=film_payload()).json()["documents"]])
    full = client.post("/query", json={"query": "Maria Kessler", "mode": "local", "top_k": 4}).json()["results"]
    assert len(full) >= 2
    first, second = client.workspace.embedder.count_tokens([full[0]["text"], full[1]["text"]])
    cut = client.post("/query", json={"query": "Maria Kessler", "mode": "local", "top_k": 4, "max_context_tokens": first + second - 1}).json()["results"]
    assert [h["chunk_id"] for h in cut] == [full[0]["chunk_id"]]


def test_queries_beyond_the_cap_wait_their_turn(make_workspace):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    workspace = make_workspace("capped", max_concurrent_queries=2)
    running, peak, lock = 0, 0, threading.Lock()
    real = workspace.engine.retrieve

    def slow_retrieve(*args, **kwargs):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.2)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    workspace.engine.retrieve = slow_retrieve
    with TestClient(create_app(workspace=workspace)) as client:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: client.post("/query", json={"query": "anything"}).status_code, range(8)))
    assert statuses == [200] * 8
    assert peak == 2


def _upload(name: str, data: bytes) -> dict:
    return {"files": [("files", (name, data, "application/json"))]}


DEEP_JSON = ("[" * 90_000 + "]" * 90_000).encode()  # under the fixture's 200 KB request limit
HUGE_INTEGER_RECORD = ('{"title": "t", "text": "some text", "id": ' + "9" * 5000 + "}").encode()


@pytest.mark.parametrize("path, request_args, message", [
    ("/documents", {"content": b'{"documents": [{"title": "caf\xe9", "text": "x"}]}', "headers": {"content-type": "application/json"}}, "json"),
    ("/query", {"content": b'{"query": "\\ud800 lone surrogate"}', "headers": {"content-type": "application/json"}}, "unicode"),
    ("/documents", _upload("deep.json", DEEP_JSON), "deep.json: invalid json: nested too deeply"),
    ("/documents", _upload("huge.jsonl", HUGE_INTEGER_RECORD), "huge.jsonl:1: invalid json"),
    ("/documents", _upload("title.jsonl", json.dumps({"title": "t" * 150_000, "text": "x y"}).encode()), "title is 150,000 characters"),
    ("/documents", _upload("nul.jsonl", json.dumps({"title": "t", "text": "x\u0000y"}).encode()), "nul"),
    ("/documents", _upload("empty.jsonl", json.dumps({"title": "t", "text": ""}).encode()), "blank"),
    ("/documents", _upload("surrogate.jsonl", b'{"title": "t", "text": "x \\udc80 y"}'), "unicode"),
    ("/documents", _upload("nan.jsonl", b'{"title": "t", "text": "x y", "metadata": {"score": NaN}}'), "nan.jsonl:1: invalid json"),
    ("/documents", _upload("huge.json", b'[{"title": "t", "text": "x y", "metadata": {"score": 1e400}}]'), "beyond the range of a 64-bit float"),
    ("/documents", {"json": {"documents": [{"text": "x y", "metadata": {"m": json.loads("[" * 100 + "]" * 100)}}]}}, "nested"),
    ("/documents", {"content": b'{"documents": ' + DEEP_JSON + b"}", "headers": {"content-type": "application/json"}}, "json"),
    ("/query", {"content": b'{"query": ' + DEEP_JSON + b"}", "headers": {"content-type": "application/json"}}, "json"),
    ("/documents", {"content": b'{"documents": [{"text": "x y", "metadata": {"n": ' + b"9" * 5000 + b"}}]}",
                    "headers": {"content-type": "application/json"}}, "json"),
])
def test_malformed_input_gets_a_short_4xx_never_a_500(client, path, request_args, message):
    response = client.post(path, **request_args)
    assert response.status_code == 422, response.text[:500]
    assert message in response.text.lower()
    assert len(response.content) < 2_000


# one body per JSON route, the number in a place the route's model would otherwise accept (metadata, unknown fields)
JSON_ROUTES = {
    "/documents": '{"documents": [{"text": "A text of a few words.", "source": "nan#%d", "metadata": {"score": %s}}]}',
    "/workspaces/default/documents": '{"documents": [{"text": "A text of a few words.", "source": "nan#%d", "metadata": {"score": %s}}]}',
    "/query": '{"query": "Maria Kessler %d", "answer": false, "weight": %s}',
    "/workspaces/default/query": '{"query": "Maria Kessler %d", "answer": false, "weight": %s}',
    "/query/stream": '{"query": "Maria Kessler %d", "weight": %s}',
    "/workspaces": '{"name": "nan-%d", "weight": %s}',
}


def test_numbers_json_does_not_have_get_a_422_naming_them_on_every_json_route(client):
    """Python's parser reads NaN, Infinity and an overflowing 1e400 (as infinity); none is JSON, and stored they
    would come back as null or as text other clients cannot parse. Every JSON route refuses them, saying which."""
    for (path, template), (n, number) in [(route, case) for route in JSON_ROUTES.items() for case in enumerate(NOT_JSON_NUMBERS)]:
        response = client.post(path, content=template % (n, number), headers={"content-type": "application/json"})
        assert response.status_code == 422, f"{path} with {number}: {response.status_code} {response.text[:300]}"
        [problem] = response.json()["detail"]
        assert problem["type"] == "json_invalid" and number in problem["msg"], f"{path} with {number}: {problem}"
    assert client.get("/documents").json()["total"] == 0
    assert [w["name"] for w in client.get("/workspaces").json()["workspaces"]] == [DEFAULT_WORKSPACE]


def test_finite_numbers_of_any_size_a_double_holds_are_accepted(client):
    metadata = {"largest": 1.7976931348623157e308, "tiny": 5e-324, "negative_zero": -0.0, "big_integer": 10**40}
    response = client.post("/documents", json={"documents": [{"text": "A text of a few words.", "metadata": metadata}]})
    assert response.status_code == 202, response.text
    assert client.post("/query", content=b'{"query": "words", "top_k": 3, "weight": 1e308}', headers={"content-type": "application/json"}).status_code == 200


def test_a_422_quotes_only_an_excerpt_of_the_input(client):
    response = client.post("/documents", json={"documents": [{"title": "x" * 190_000, "text": "x y"}]})
    assert response.status_code == 422 and "at most 1000 characters" in response.text
    assert len(response.content) < 2_000
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["documents", 0, "title"] and len(problem["input"]) <= 200
    many = client.post("/documents", json={"documents": [{"text": ""}] * 5_000})
    assert many.status_code == 422 and len(many.content) < 20_000
    assert "4,980 more problems" in many.text


def test_lone_surrogates_in_query_strings_and_paths_are_not_server_errors(client):
    assert client.get("/graph/entities?q=%ED%A0%80").status_code == 200
    missing = client.get("/documents/doc-%ED%A0%80")
    assert missing.status_code == 404 and len(missing.content) < 300


def test_uploaded_records_and_json_bodies_share_the_limits(client):
    from graphdex.ingest.documents import MAX_TITLE_CHARS

    longest = {"title": "t" * MAX_TITLE_CHARS, "text": "A text of a few words.", "source": "limits#ok"}
    assert client.post("/documents", json={"documents": [longest]}).status_code == 202
    assert client.post("/documents", files=_upload("ok.jsonl", json.dumps(longest).encode())["files"]).status_code == 202
    too_long = {**longest, "title": "t" * (MAX_TITLE_CHARS + 1)}
    assert client.post("/documents", json={"documents": [too_long]}).status_code == 422
    assert client.post("/documents", files=_upload("long.jsonl", json.dumps(too_long).encode())["files"]).status_code == 422


@pytest.fixture
def guarded_client(make_workspace):
    """Reads and writes both behind a non-ASCII key: the key must work as the UTF-8 bytes a client sends."""
    workspace = make_workspace("guarded", extract_workers=0, api_key="clé-ключ-鍵", api_key_for_reads=True)
    with TestClient(create_app(workspace=workspace)) as client:
        yield client


def test_the_key_is_checked_before_the_request_is_validated_on_every_route(guarded_client):
    schema = guarded_client.get("/openapi.json").json()
    checked = []
    for path, operations in schema["paths"].items():
        for method in operations:
            if path == "/health":
                continue
            url = path.replace("{", "").replace("}", "")  # /documents/{doc_id} -> /documents/doc_id
            response = guarded_client.request(method, url, params={"limit": "-1", "status": "lost", "depth": "99"},
                                              content=b'{"not json', headers={"content-type": "application/json"})
            assert response.status_code == 401, (method, path, response.text)
            checked.append(f"{method} {path}")
    assert len(checked) >= 11, checked
    assert guarded_client.get("/health").status_code == 200


def test_a_non_ascii_key_works_as_utf8_bytes(guarded_client):
    right = {"X-API-Key": "clé-ключ-鍵".encode()}
    assert guarded_client.get("/documents", headers=right).status_code == 200
    assert guarded_client.post("/query", json={"query": "anything"}, headers=right).status_code == 200
    assert guarded_client.get("/documents", headers={"X-API-Key": "clé-ключ-鍵".encode("latin-1", "replace")}).status_code == 401
    assert guarded_client.get("/documents", headers={"X-API-Key": b"cl"}).status_code == 401


@pytest.mark.parametrize("key, reason", [("key\udcff", "UTF-8"), (" key", "whitespace"), ("key\x07", "control")])
def test_a_key_no_client_could_send_is_refused_at_start_up(make_workspace, key, reason):
    from graphdex.api.deps import InvalidApiKey

    with pytest.raises(InvalidApiKey, match=reason):
        create_app(workspace=make_workspace("refused", api_key=key))


def assert_gone(client: TestClient, doc_id: str, entity: str) -> None:
    """Deleted for every reader: status, listing, graph, entity search and vectors."""
    assert client.get(f"/documents/{doc_id}").status_code == 404
    assert doc_id not in {d["id"] for d in client.get("/documents", params={"limit": 1000}).json()["documents"]}
    assert client.workspace.store.get_nodes([doc_id]) == {}
    assert client.get("/graph/entities", params={"q": entity}).json()["entities"] == []
    stats = client.get("/graph/stats").json()
    assert stats["vectors"]["Chunk"] == stats["nodes"]["Chunk"]


def test_a_document_deleted_while_it_is_indexed_is_deleted_right_after(client):
    held = HeldWorker(client.workspace)
    bled = {"title": "Lake Bled", "text": "Lake Bled is a lake in the Julian Alps in Slovenia.", "source": "race/bled"}
    soca = {"title": "Soca", "text": "The Soca is a river that flows through Bovec in Slovenia.", "source": "race/soca"}
    [indexing] = client.post("/documents", json={"documents": [bled]}).json()["documents"]
    assert held.claimed.wait(60)
    [waiting] = client.post("/documents", json={"documents": [soca]}).json()["documents"]
    assert client.get(f"/documents/{indexing['id']}").json()["status"] == "processing"
    try:
        first = client.delete(f"/documents/{indexing['id']}")
        second = client.delete(f"/documents/{waiting['id']}")
    finally:
        held.release.set()
    assert (first.status_code, first.json()["status"], first.json()["was"]) == (202, "deleting", "processing"), first.text
    assert (second.status_code, second.json()["status"], second.json()["was"]) == (202, "deleting", "pending"), second.text
    wait_until_deleted(client, indexing["id"])
    wait_until_deleted(client, waiting["id"])
    assert_gone(client, indexing["id"], "bled")
    assert_gone(client, waiting["id"], "bovec")


def test_deletes_never_hold_the_servers_threads(client):
    wait_until_settled(client, [d["id"] for d in client.post("/documents", json=film_payload()).json()["documents"]])
    kessler = document_id("people/kessler.md")
    held = HeldWorker(client.workspace)
    slow = {"title": "Lake Bled", "text": "Lake Bled is a lake in the Julian Alps in Slovenia.", "source": "slow/bled"}
    [batch] = client.post("/documents", json={"documents": [slow]}).json()["documents"]
    assert held.claimed.wait(60)
    with ThreadPoolExecutor(45) as pool:
        try:
            deletes = [pool.submit(client.delete, f"/documents/{kessler}") for _ in range(45)]
            time.sleep(0.5)
            started = time.monotonic()
            assert client.get("/health").status_code == 200
            health_seconds = time.monotonic() - started
            statuses = [future.result(timeout=10).status_code for future in deletes]
            assert client.get(f"/documents/{kessler}").json()["status"] == "deleting"  # queued behind the batch
        finally:
            held.release.set()
    assert health_seconds < 2.0
    assert statuses == [202] * 45
    wait_until_deleted(client, kessler)
    assert wait_until_settled(client, [batch["id"]])[batch["id"]]["status"] == "done"
    assert_gone(client, kessler, "leipzig")


def test_a_queue_of_batches_refreshes_the_community_layer_once_and_ends_settled(make_workspace):
    """With more documents waiting, a batch leaves the community refresh (most of a small batch's cost on a large
    index) to the last batch of the queue: one refresh for the whole queue, and the index ends as a CLI build of the
    same documents does (a valid community layer, the vectors saved whole, nothing left recorded)."""
    workspace = make_workspace("settle", extract_workers=0, ingest_batch_documents=1)
    with TestClient(create_app(workspace=workspace)) as client:
        service = client.app.state.graphdex.registry.opened(DEFAULT_WORKSPACE).service
        response = client.post("/documents", json=film_payload())  # one submission: every batch is queued at once
        assert response.status_code == 202
        states = wait_until_settled(client, [d["id"] for d in response.json()["documents"]])
        assert all(s["status"] == "done" for s in states.values()), states
        deadline = time.monotonic() + 60
        while service._unsettled:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert service.batches == len(FILM_DOCS) >= 3
        assert service.settles == 1, "one refresh for the queue, not one per batch"
        assert not workspace.maintenance.target.changes and not workspace.vectors.dirty
        assert_valid_communities(snapshot(workspace))
        assert workspace.store.node_ids(NodeType.COMMUNITY), "the layer was built"


@pytest.mark.e2e
def test_a_service_build_in_several_submissions_equals_a_cli_build_vector_for_vector(make_workspace, store_kind, sample_records, tmp_path):
    """Each submission indexed before the next is sent: an operation of its own, with its own community refresh and
    save, as a service fed over time does. Reopened, the index equals a CLI build of the same documents: the graph
    and every vector exactly, the community layer (which depends on the history of writes) valid, each Community
    vector the embedding of its node's current text (issue 23: stale Community vectors after service builds)."""
    documents = as_documents(sample_records[:48])
    served = make_workspace("served", store=store_kind, extract_workers=0)
    with TestClient(create_app(workspace=served)) as client:
        for start in range(0, len(documents), 12):
            part = documents[start : start + 12]
            response = client.post("/documents", json={"documents": [{"title": d.title, "text": d.text, "source": d.source} for d in part]})
            assert response.status_code == 202
            states = wait_until_settled(client, [d["id"] for d in response.json()["documents"]])
            assert all(s["status"] == "done" for s in states.values()), states
    reopened = make_workspace("served", store=store_kind)
    assert_same(snapshot(reopened), clean_build(make_workspace, store_kind, documents, tmp_path, {}), communities="valid")


# documents in the race below. The issue that found ghosts saw 9 in about 10,000 deletes: at that rate 5,000 show at
# least one with a probability of 99% (1 - e^-4.5), in half the time of 10,000 (the longest test of CI)
RACE_DOCUMENTS = 5_000


@pytest.mark.e2e
def test_submit_then_delete_under_load_leaves_no_ghosts(make_workspace):
    """Every document is submitted and then deleted, one in ten then submitted again, all at once from 8 threads
    while the worker indexes batches; a second wave of deletes follows for one in twenty, so deletes meet documents
    pending, being indexed and done: afterwards exactly the documents whose last acknowledged request was a submit
    are in the graph and done, the others nowhere."""
    workspace = make_workspace("ghosts", extract_workers=0, ingest_batch_documents=16)
    rng = random.Random(11)
    pauses = [rng.random() * 0.003 for _ in range(2 * RACE_DOCUMENTS)]
    met: list[str] = []  # the status each delete found

    with TestClient(create_app(workspace=workspace)) as client:
        def delete(doc_id: str) -> None:
            deleted = client.delete(f"/documents/{doc_id}")
            assert deleted.status_code == 202, deleted.text
            met.append(deleted.json()["was"])

        def life(i: int) -> tuple[str, bool | None]:
            doc = {"title": f"Note {i}", "text": f"Note {i} is about the town of Varna{i} and the river Olt{i}.", "source": f"load/{i}"}
            response = client.post("/documents", json={"documents": [doc]})
            assert response.status_code == 202, response.text
            doc_id = response.json()["documents"][0]["id"]
            if i % 20 == 5:
                return doc_id, None  # deleted in the second wave, once many documents are indexed
            time.sleep(pauses[i])
            delete(doc_id)
            if i % 10:
                return doc_id, False
            time.sleep(pauses[RACE_DOCUMENTS + i])
            assert client.post("/documents", json={"documents": [doc]}).status_code == 202
            return doc_id, True

        with ThreadPoolExecutor(8) as pool:
            outcome = dict(pool.map(life, range(RACE_DOCUMENTS)))
            later = [doc_id for doc_id, present in outcome.items() if present is None]
            list(pool.map(delete, later))
            outcome.update(dict.fromkeys(later, False))
        assert {"pending", "processing", "done"} <= set(met), Counter(met)  # the deletes met every stage of indexing
        deadline = time.monotonic() + 900
        while (counts := client.get("/documents", params={"limit": 1}).json()["counts"])["done"] + counts["failed"] != sum(outcome.values()) \
                or counts["pending"] + counts["processing"] + counts["deleting"]:
            assert time.monotonic() < deadline, counts
            time.sleep(0.5)
        kept = {doc_id for doc_id, present in outcome.items() if present}
        listed = [d for offset in range(0, RACE_DOCUMENTS, 1000)
                  for d in client.get("/documents", params={"limit": 1000, "offset": offset}).json()["documents"]]
        assert {d["id"] for d in listed} == kept and {d["status"] for d in listed} == {"done"}
        assert workspace.store.node_ids(NodeType.DOCUMENT) == kept
        assert all(client.get(f"/documents/{doc_id}").status_code == 404 for doc_id in outcome.keys() - kept)
        stats = client.get("/graph/stats").json()
        assert stats["vectors"]["Chunk"] == stats["nodes"]["Chunk"] == len(kept)


def test_an_acknowledged_delete_survives_a_restart(make_workspace):
    """The service stops after acknowledging a delete but before carrying it out (the worker was busy with a batch):
    the mark is in the durable queue, and the next start deletes the document."""
    workspace = make_workspace("restart", extract_workers=0)
    with TestClient(create_app(workspace=workspace)) as client:
        client.workspace = workspace
        [kessler] = client.post("/documents", json={"documents": [film_payload()["documents"][1]]}).json()["documents"]
        wait_until_settled(client, [kessler["id"]])
        held = HeldWorker(workspace)
        client.post("/documents", json={"documents": [film_payload()["documents"][0]]})
        assert held.claimed.wait(60)
        assert client.delete(f"/documents/{kessler['id']}").status_code == 202
        threading.Timer(0.5, held.release.set).start()  # the worker finishes its batch while the service stops
    reopened = make_workspace("restart", extract_workers=0)
    assert reopened.store.get_nodes([kessler["id"]]), "the delete was carried out before the stop: nothing to resume"
    with TestClient(create_app(workspace=reopened)) as client:
        client.workspace = reopened
        wait_until_deleted(client, kessler["id"])
        assert_gone(client, kessler["id"], "leipzig")
