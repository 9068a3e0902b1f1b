"""Workspaces: several isolated indexes served by one service, on both stores. Documents, queries, deletes and graph
endpoints never cross; scoped keys are refused outside their workspaces and change nothing; creating, listing and
deleting workspaces (completely, crash-safely); the CLI's --workspace."""

from __future__ import annotations

import json
import threading
import time

import neo4j
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from graphdex.api.access import InvalidApiKey
from graphdex.api.app import create_app
from graphdex.api.cli import app as cli
from graphdex.api.jobs import JobQueue
from graphdex.api.layout import Layout, queue_path
from graphdex.common.ids import document_id
from graphdex.ingest.documents import SourceDocument
from tests.conftest import FILM_DOCS, drop_neo4j_workspace
from tests.helpers import HeldWorker, browse_queries

ADMIN = {"X-API-Key": "admin-key"}
KEY_ALPHA = {"X-API-Key": "key-for-alpha"}
NAMED = ("alpha", "beta", "gamma")
ALPHA_DOCS = FILM_DOCS[:2]  # The Harbor Lights, Maria Kessler (born in Leipzig)
BETA_DOCS = FILM_DOCS[3:]  # the World Health Organization, founded in Geneva: no name in common with alpha's


@pytest.fixture
def serve(request, make_workspace, store_kind):
    """Services over one fresh data dir (each call the same one: a restart); the Neo4j nodes of its named workspaces
    are dropped afterwards (make_workspace drops the default one's)."""
    layouts: list[Layout] = []

    def start(**settings) -> TestClient:
        default = make_workspace("svc", store=store_kind, extract_workers=0, **settings)
        client = TestClient(create_app(workspace=default))
        client.default = default
        client.layout = Layout(default.settings)
        layouts.append(client.layout)
        return client

    yield start
    if store_kind == "neo4j":
        for layout in layouts:
            for name in NAMED:
                drop_neo4j_workspace(request.getfixturevalue("neo4j_server"), layout.neo4j_workspace(name))


@pytest.fixture
def service(serve):
    """A running service with reads and writes behind keys: the admin key (sent by default) and one for alpha only."""
    with serve(api_key="admin-key", api_key_for_reads=True, workspace_keys={"key-for-alpha": ["alpha"]}) as client:
        client.headers.update(ADMIN)
        yield client


def payload(docs: list[SourceDocument]) -> dict:
    return {"documents": [{"title": d.title, "text": d.text, "source": d.source} for d in docs]}


def submit(client: TestClient, prefix: str, docs: list[SourceDocument]) -> list[str]:
    response = client.post(f"{prefix}/documents", json=payload(docs))
    assert response.status_code == 202, response.text
    ids = [d["id"] for d in response.json()["documents"]]
    settle(client, prefix)
    return ids


def settle(client: TestClient, prefix: str, timeout: float = 120.0) -> dict[str, int]:
    """Waits until the workspace's queue has nothing left to do; returns its counts."""
    deadline = time.monotonic() + timeout
    while (counts := client.get(f"{prefix}/documents", params={"limit": 1}).json()["counts"])["pending"] + counts["processing"] + counts["deleting"]:
        assert time.monotonic() < deadline, counts
        time.sleep(0.1)
    return counts


def listed(client: TestClient, prefix: str) -> set[str]:
    return {d["id"] for d in client.get(f"{prefix}/documents", params={"limit": 1000}).json()["documents"]}


def found(client: TestClient, prefix: str, question: str) -> set[str]:
    response = client.post(f"{prefix}/query", json={"query": question, "mode": "hybrid", "top_k": 10})
    assert response.status_code == 200, response.text
    return {hit["doc_id"] for hit in response.json()["results"]}


def entity(client: TestClient, prefix: str, text: str) -> list[dict]:
    return client.get(f"{prefix}/graph/entities", params={"q": text}).json()["entities"]


def snapshot(client: TestClient, prefix: str) -> dict:
    """Everything a reader of the workspace can count, to compare before and after a refused request."""
    stats = client.get(f"{prefix}/graph/stats").json()
    return {"nodes": stats["nodes"], "edges": stats["edges"], "vectors": stats["vectors"], "queue": stats["queue"], "documents": listed(client, prefix)}


def test_two_workspaces_never_cross(service, store_kind):
    client = service
    for name in ("alpha", "beta"):
        assert client.post("/workspaces", json={"name": name}).status_code == 201
    alpha_ids = submit(client, "/workspaces/alpha", ALPHA_DOCS)
    beta_ids = submit(client, "/workspaces/beta", BETA_DOCS)
    shared = submit(client, "", BETA_DOCS)  # the same document in the default workspace: the same id, another index
    assert shared == beta_ids
    assert client.get("/health", headers={"X-API-Key": ""}).status_code == 200  # the container's check stays open
    assert client.get("/workspaces/beta/health", headers={"X-API-Key": ""}).status_code == 401  # a read of beta

    # listed and counted only where submitted
    assert listed(client, "/workspaces/alpha") == set(alpha_ids)
    assert listed(client, "/workspaces/beta") == set(beta_ids)
    assert listed(client, "") == listed(client, "/workspaces/default") == set(beta_ids)
    counts = {w["name"]: w["documents"] for w in client.get("/workspaces").json()["workspaces"]}
    assert counts == {"default": 1, "alpha": 2, "beta": 1}
    assert client.get("/workspaces/alpha/graph/stats").json()["nodes"]["Document"] == 2
    assert client.get("/workspaces/beta").json()["nodes"]["Document"] == 1

    # found only where indexed, by queries and by the graph endpoints
    assert found(client, "/workspaces/alpha", "Where was Maria Kessler born?") <= set(alpha_ids)
    assert found(client, "/workspaces/beta", "Where was Maria Kessler born?") <= set(beta_ids)
    assert found(client, "/workspaces/beta", "Where was the World Health Organization founded?") == set(beta_ids)
    assert not found(client, "/workspaces/alpha", "World Health Organization Geneva") & set(beta_ids)
    [kessler] = [e for e in entity(client, "/workspaces/alpha", "kessler") if e["name"] == "Maria Kessler"]
    assert entity(client, "/workspaces/beta", "kessler") == [] and entity(client, "/workspaces/alpha", "geneva") == []
    assert client.get(f"/workspaces/alpha/graph/entities/{kessler['id']}").status_code == 200
    assert client.get(f"/workspaces/beta/graph/entities/{kessler['id']}").status_code == 404
    assert client.get("/workspaces/beta/graph/subgraph", params={"entity": kessler["id"]}).status_code == 404
    assert client.get(f"/workspaces/beta/documents/{alpha_ids[0]}").status_code == 404

    # a delete never reaches another workspace: not alpha's document from beta, not beta's copy from the default
    assert client.delete(f"/workspaces/beta/documents/{alpha_ids[0]}").status_code == 404
    before = snapshot(client, "/workspaces/beta")
    assert client.delete(f"/documents/{shared[0]}").status_code == 202
    settle(client, "")
    assert listed(client, "") == set() and client.get(f"/documents/{shared[0]}").status_code == 404
    assert snapshot(client, "/workspaces/beta") == before
    assert found(client, "/workspaces/beta", "Where was the World Health Organization founded?") == set(beta_ids)

    if store_kind == "neo4j":  # in the database itself: each workspace's nodes apart, no relationship between two
        s = client.default.settings
        names = {name: client.layout.neo4j_workspace(name) for name in ("default", "alpha", "beta")}
        assert client.get("/workspaces/alpha").json()["neo4j_workspace"] == names["alpha"] == f"{s.neo4j_workspace}:alpha"
        with neo4j.GraphDatabase.driver(s.neo4j_uri, auth=(s.neo4j_user, s.neo4j_password)) as driver:
            def count(query: str, **params) -> int:
                return driver.execute_query(query, params).records[0]["n"]

            for name, expected in (("default", 0), ("alpha", 2), ("beta", 1)):
                assert count("MATCH (d:Document {workspace: $ws}) RETURN count(d) AS n", ws=names[name]) == expected
            assert count("MATCH (a)-[r]-(b) WHERE a.workspace IN $names AND a.workspace <> b.workspace RETURN count(r) AS n",
                         names=list(names.values())) == 0
            # the Browser guide's queries take the workspace as a parameter: alpha's finds Kessler, beta's does not
            params = {"name": "Maria Kessler", "other": "Leipzig", "title": "The Harbor Lights"}
            neighbourhood = browse_queries()[0]
            assert driver.execute_query(neighbourhood, {**params, "workspace": names["alpha"]}).records
            assert not driver.execute_query(neighbourhood, {**params, "workspace": names["beta"]}).records


def test_a_key_scoped_to_one_workspace_is_refused_elsewhere_and_changes_nothing(service):
    client = service
    for name in ("alpha", "beta"):
        client.post("/workspaces", json={"name": name})
    [beta_doc] = submit(client, "/workspaces/beta", BETA_DOCS)
    before = snapshot(client, "/workspaces/beta"), snapshot(client, "")
    doc = payload(ALPHA_DOCS[:1])
    refused = [
        client.post("/workspaces/beta/documents", json=doc, headers=KEY_ALPHA),
        client.post("/documents", json=doc, headers=KEY_ALPHA),  # the default workspace is not alpha either
        client.delete(f"/workspaces/beta/documents/{beta_doc}", headers=KEY_ALPHA),
        client.post(f"/workspaces/beta/documents/{beta_doc}/retry", headers=KEY_ALPHA),
        client.post("/workspaces/beta/query", json={"query": "World Health Organization"}, headers=KEY_ALPHA),
        client.get("/workspaces/beta/documents", headers=KEY_ALPHA),
        client.get("/workspaces/beta/graph/stats", headers=KEY_ALPHA),
        client.get("/workspaces/beta", headers=KEY_ALPHA),
        client.delete("/workspaces/beta", headers=KEY_ALPHA),  # managing workspaces takes the admin key
        client.post("/workspaces", json={"name": "gamma"}, headers=KEY_ALPHA),
        # the key is judged before the body or the workspace: no 422 about either
        client.post("/workspaces/beta/documents", content=b'{"not json', headers={**KEY_ALPHA, "content-type": "application/json"}),
        client.get("/workspaces/no-such-one/documents", headers=KEY_ALPHA),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused), [(r.request.method, r.request.url.path, r.text) for r in refused]
    assert "not allowed on workspace 'beta'" in refused[0].text
    assert (snapshot(client, "/workspaces/beta"), snapshot(client, "")) == before
    assert not client.layout.exists("gamma")

    for headers in ({"X-API-Key": ""}, {"X-API-Key": "key-for-alph"}, {"X-API-Key": "admin-keys"}):
        assert client.post("/workspaces/alpha/documents", json=doc, headers=headers).status_code == 401
        assert client.post("/workspaces/alpha/documents", content=b"{", headers={**headers, "content-type": "application/json"}).status_code == 401
        assert client.get("/workspaces", headers=headers).status_code == 401

    assert client.post("/workspaces/alpha/documents", json=doc, headers=KEY_ALPHA).status_code == 202
    settle(client, "/workspaces/alpha")
    assert client.get("/workspaces/alpha/documents", headers=KEY_ALPHA).json()["counts"]["done"] == 1
    assert found(client, "/workspaces/alpha", "Where was the director of The Harbor Lights born?")
    assert [w["name"] for w in client.get("/workspaces", headers=KEY_ALPHA).json()["workspaces"]] == ["alpha"]


def test_create_list_stats_and_delete_completely(service, store_kind):
    client = service
    assert client.post("/workspaces", json={"name": "gamma"}).json() == {"name": "gamma", "url": "/workspaces/gamma"}
    assert client.post("/workspaces", json={"name": "gamma"}).status_code == 409
    assert client.post("/workspaces", json={"name": "default"}).status_code == 409
    for bad in ("Gamma", "-gamma", "g" * 64, "a/b", ""):
        response = client.post("/workspaces", json={"name": bad})
        assert response.status_code == 422 and "invalid workspace name" in response.text, (bad, response.text)
    assert client.get("/workspaces/Gamma/documents").status_code == 422
    unknown = client.get("/workspaces/delta/documents")
    assert unknown.status_code == 404 and 'POST /workspaces {"name": "delta"}' in unknown.json()["detail"]
    assert client.get("/workspaces/delta").status_code == 404 and client.delete("/workspaces/delta").status_code == 404
    assert client.delete("/workspaces/default").status_code == 409

    ids = submit(client, "/workspaces/gamma", ALPHA_DOCS)
    stats = client.get("/workspaces/gamma").json()
    assert stats["name"] == "gamma" and stats["nodes"]["Document"] == 2 and stats["vectors"]["Chunk"] == stats["nodes"]["Chunk"] > 0
    assert [w["name"] for w in client.get("/workspaces").json()["workspaces"]] == ["default", "gamma"]
    folder = client.layout.folder("gamma")

    # deleted while its writer is busy indexing: the worker finishes its batch and stops, then everything goes
    served = client.app.state.graphdex.registry.acquire("gamma")
    served.leave()
    held = HeldWorker(served.workspace)
    client.post("/workspaces/gamma/documents", json=payload(BETA_DOCS))
    assert held.claimed.wait(60)
    threading.Timer(0.5, held.release.set).start()
    assert client.delete("/workspaces/gamma").json() == {"name": "gamma", "deleted": True}
    assert not folder.exists() and list(client.layout.root.iterdir()) == []
    assert client.get("/workspaces/gamma/documents").status_code == 404
    assert client.get(f"/workspaces/gamma/documents/{ids[0]}").status_code == 404
    assert [w["name"] for w in client.get("/workspaces").json()["workspaces"]] == ["default"]
    if store_kind == "neo4j":
        assert neo4j_nodes(client, "gamma") == 0

    # the name can be used again, for an empty workspace
    assert client.post("/workspaces", json={"name": "gamma"}).status_code == 201
    assert client.get("/workspaces/gamma").json()["nodes"]["Document"] == 0
    assert client.get("/workspaces/gamma/documents").json()["total"] == 0


def neo4j_nodes(client: TestClient, name: str) -> int:
    s = client.default.settings
    with neo4j.GraphDatabase.driver(s.neo4j_uri, auth=(s.neo4j_user, s.neo4j_password)) as driver:
        return driver.execute_query("MATCH (n {workspace: $ws}) RETURN count(n) AS n", ws=client.layout.neo4j_workspace(name)).records[0]["n"]


def test_a_deletion_interrupted_by_a_crash_is_finished_at_the_next_start(serve, store_kind):
    with serve() as client:
        client.post("/workspaces", json={"name": "gamma"})
        submit(client, "/workspaces/gamma", ALPHA_DOCS)
    tombstone = client.layout.bury("gamma")  # a delete renamed the folder, and the service died before removing anything
    assert not client.layout.exists("gamma") and tombstone.folder.exists()
    if store_kind == "neo4j":
        assert neo4j_nodes(client, "gamma") > 0
    with serve() as restarted:
        assert client.layout.tombstones() == [] and not tombstone.folder.exists()
        assert [w["name"] for w in restarted.get("/workspaces").json()["workspaces"]] == ["default"]
        assert restarted.get("/workspaces/gamma/documents").status_code == 404
    if store_kind == "neo4j":
        assert neo4j_nodes(client, "gamma") == 0


@pytest.mark.parametrize("store_kind", ["embedded"])  # a damaged file: the embedded store's case
def test_a_workspace_that_cannot_be_opened_can_still_be_deleted(serve):
    """A damaged workspace (or one another graphdex version wrote) answers 503, and deleting it is the way out."""
    with serve() as client:
        client.post("/workspaces", json={"name": "gamma"})
        (client.layout.folder("gamma") / "graph").mkdir()
        (client.layout.folder("gamma") / "graph" / "graph.sqlite").write_bytes(b"not a database" * 100)
        assert client.get("/workspaces/gamma/documents").status_code == 503
        assert client.get("/workspaces").json()["workspaces"][1]["error"]
        assert client.delete("/workspaces/gamma").status_code == 200
        assert not client.layout.folder("gamma").exists() and client.layout.tombstones() == []


def test_queued_work_of_a_named_workspace_resumes_at_start(make_workspace):
    """Documents acknowledged before a restart are indexed without anyone asking for their workspace first."""
    default = make_workspace("resume", extract_workers=0)
    layout = Layout(default.settings)
    layout.root.mkdir(parents=True)
    layout.folder("alpha").mkdir()
    queue = JobQueue(queue_path(layout.settings_for("alpha")))
    doc = ALPHA_DOCS[1]
    queue.submit([(document_id(doc.source), doc)])
    queue.close()
    with TestClient(create_app(workspace=default)) as client:
        registry = client.app.state.graphdex.registry
        served = registry.opened("alpha")
        assert served is not None, "the workspace with queued work was not opened at start"
        deadline = time.monotonic() + 60
        while served.jobs.counts()["done"] != 1:
            assert time.monotonic() < deadline, served.jobs.counts()
            time.sleep(0.1)
        # the named workspace borrows the default one's heavy parts rather than loading its own
        assert served.workspace.embedder is default.embedder and served.workspace.nlp is default.nlp
        assert served.workspace.extractor is default.extractor
        assert client.get("/workspaces/alpha/graph/stats").json()["nodes"]["Document"] == 1


def test_every_workspace_route_declares_its_workspace_in_the_schema(make_workspace):
    """The prefixed routes are the unprefixed ones plus a documented {workspace} path parameter: a valid schema."""
    with TestClient(create_app(workspace=make_workspace("schema", extract_workers=0))) as client:
        paths = client.get("/openapi.json").json()["paths"]
    index_routes = [p for p in paths if not p.startswith("/workspaces")]
    assert len(index_routes) >= 11
    for path in index_routes:
        assert f"/workspaces/{{workspace}}{path}" in paths, path
        assert paths[f"/workspaces/{{workspace}}{path}"].keys() == paths[path].keys()
    for path, operations in paths.items():
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(part[1:-1] for part in path.split("/") if part.startswith("{")), (method, path)


@pytest.mark.parametrize("keys, reason", [
    ({"scoped": ["alpha"]}, "needs GRAPHDEX_API_KEY"),
    ({"scoped": ["Alpha"]}, "invalid workspace name"),
    ({"scoped": []}, "lists no workspace"),
    ({"admin-key": ["alpha"]}, "equals GRAPHDEX_API_KEY"),
    ({"key\x07": ["alpha"]}, "control characters"),
    ({" key": ["alpha"]}, "whitespace"),
])
def test_scoped_keys_that_cannot_work_are_refused_at_start_up(make_workspace, keys, reason):
    admin = {} if reason.startswith("needs") else {"api_key": "admin-key"}
    with pytest.raises(InvalidApiKey, match=reason):
        create_app(workspace=make_workspace("refused", workspace_keys=keys, **admin))


@pytest.mark.e2e
def test_cli_workspace_option(tmp_path):
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(cli, ["--data-dir", str(tmp_path / "index"), *args], env={"GRAPHDEX_EXTRACT_WORKERS": "0"})
        return result, " ".join(result.output.split())

    corpus = tmp_path / "kessler.md"
    corpus.write_text("# Maria Kessler\n\nMaria Kessler was a German film director born in Leipzig.")
    result, said = run("ingest", str(corpus), "--workspace", "films")
    assert result.exit_code == 1 and "no workspace 'films'" in said and "graphdex workspace create films" in said
    assert run("workspace", "create", "films")[0].exit_code == 0
    assert "already exists" in run("workspace", "create", "films")[1]
    assert "invalid workspace name" in run("workspace", "create", "Films")[1]
    result, said = run("ingest", str(corpus), "--workspace", "films", "--json")
    assert result.exit_code == 0, said

    def documents(*args: str) -> int:
        result, said = run("stats", "--json", *args)
        assert result.exit_code == 0, said
        return json.loads(result.stdout)["nodes"]["Document"]

    assert documents("--workspace", "films") == 1 and documents() == 0
    hits = json.loads(run("query", "Where was Maria Kessler born?", "--json", "--workspace", "films")[0].stdout)["chunks"]
    assert hits and hits[0]["title"] == "Maria Kessler"
    assert json.loads(run("query", "Where was Maria Kessler born?", "--json")[0].stdout)["chunks"] == []
    listing = json.loads(run("workspace", "list", "--json")[0].stdout)["workspaces"]
    assert listing == [{"name": "default", "documents": 0}, {"name": "films", "documents": 1}]
    result, said = run("delete", str(corpus))  # not in the default workspace: nothing to delete there (exit 0, as rm -f)
    assert result.exit_code == 0 and "nothing to delete" in said and documents("--workspace", "films") == 1
    result, said = run("delete", str(corpus), "--workspace", "films")
    assert result.exit_code == 0 and said.startswith("deleted doc-"), said
    assert documents("--workspace", "films") == 0
    assert "cannot be deleted" in run("workspace", "delete", "default", "--yes")[1]
    assert run("workspace", "delete", "films", "--yes")[0].exit_code == 0
    assert not (tmp_path / "index" / "workspaces" / "films").exists()
    assert "no workspace 'films'" in run("stats", "--workspace", "films")[1]
