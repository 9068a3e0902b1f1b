"""The MCP server through the SDK's own client, against real indexes: `graphdex mcp` over stdio (a subprocess), and
the /mcp endpoint of a real `graphdex serve` process (and of the app under uvicorn in a thread) over streamable HTTP.
Tools, citations, the add/status/delete round trip, caller mistakes as tool errors, and the REST key rules."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from fastapi.testclient import TestClient
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import PARSE_ERROR, CallToolResult
from typer.testing import CliRunner

from graphdex.api.app import create_app
from graphdex.api.cli import app as cli
from graphdex.api.layout import Layout
from graphdex.api.lifecycle import create_workspace
from graphdex.api.workspace import Workspace
from graphdex.common.ids import document_id
from graphdex.common.settings import Settings
from tests.conftest import FILM_DOCS, REPO
from tests.helpers import NOT_JSON_NUMBERS, running_server

QUESTION = "Where was the director of The Harbor Lights born?"
TOOLS = {"search", "lookup_entity", "entity_neighbourhood", "subgraph", "add_documents", "document_status", "delete_document"}
BLED = {"title": "Lake Bled", "text": "Lake Bled is a lake in the Julian Alps in Slovenia. Its island has a church.", "source": "wiki/bled"}
ADMIN = {"X-API-Key": "admin-key"}
ALPHA = {"X-API-Key": "key-for-alpha"}


def run(test: Callable[[], Awaitable[None]]) -> None:
    anyio.run(test)


def film_documents() -> list[dict[str, str]]:
    return [{"title": d.title, "text": d.text, "source": d.source} for d in FILM_DOCS]


# clients ---------------------------------------------------------------------------------------------------------------

@asynccontextmanager
async def stdio_session(data_dir: Path, *options: str) -> AsyncIterator[ClientSession]:
    """`graphdex mcp` as an MCP client starts it: a subprocess speaking MCP on its stdin and stdout."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "graphdex.api.cli", "mcp", *options], cwd=str(REPO),
                                   env={**os.environ, "GRAPHDEX_DATA_DIR": str(data_dir), "GRAPHDEX_EXTRACT_WORKERS": "0"})
    with open(data_dir.parent / "mcp-stderr.log", "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@asynccontextmanager
async def http_session(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    async with (httpx2.AsyncClient(headers=headers or {}, timeout=60) as client,
                streamable_http_client(f"{url}/mcp", http_client=client) as (read, write), ClientSession(read, write) as session):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's structured result; fails the test on a tool error."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {error_text(result)}"
    assert result.structured_content is not None
    return result.structured_content


async def refused(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The message of a tool error (a result with isError, not a protocol error); fails the test if the call worked."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, f"{tool}({arguments}) should have failed: {result.structured_content}"
    return error_text(result)


def error_text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def settled(session: ClientSession, doc_id: str, timeout: float = 60, **where: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (status := await call(session, "document_status", document_id=doc_id, **where))["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, status
        await anyio.sleep(0.2)
    return status


async def deleted(session: ClientSession, doc_id: str, timeout: float = 60, **where: str) -> str:
    """Waits until the acknowledged delete is carried out: then the id is unknown. Returns that tool error."""
    deadline = time.monotonic() + timeout
    while not (result := await session.call_tool("document_status", {"document_id": doc_id, **where})).is_error:
        assert result.structured_content["status"] in ("deleting", "done"), result.structured_content
        assert time.monotonic() < deadline, result.structured_content
        await anyio.sleep(0.2)
    return error_text(result)


def titles(found: dict[str, Any]) -> list[str]:
    return [passage["title"] for passage in found["passages"]]


async def stats(session: ClientSession, uri: str = "graphdex://stats") -> dict[str, Any]:
    return json.loads((await session.read_resource(uri)).contents[0].text)


# stdio -----------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def film_index(tmp_path_factory, embedder, nlp) -> Path:
    """A data directory holding the film documents, indexed before any server starts."""
    data_dir = tmp_path_factory.mktemp("stdio") / "data"
    workspace = Workspace(Settings(data_dir=data_dir, extract_workers=0))
    workspace.__dict__.update(embedder=embedder, nlp=nlp)
    try:
        with workspace.store.lock():
            workspace.indexer.ingest(FILM_DOCS)
    finally:
        workspace.close()
    return data_dir


@pytest.mark.e2e
def test_stdio_tools_answer_with_citations_and_explore_the_graph(film_index):
    async def test() -> None:
        async with stdio_session(film_index) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert set(tools) == TOOLS
            for tool in tools.values():
                assert tool.description and tool.output_schema, tool.name
                assert all(spec.get("description") for spec in tool.input_schema["properties"].values()), tool.name
            assert tools["search"].input_schema["properties"]["mode"]["enum"] == ["naive", "local", "global", "hybrid", "graph"]
            assert tools["search"].annotations.read_only_hint and tools["delete_document"].annotations.destructive_hint

            found = await call(session, "search", query=QUESTION, mode="graph", top_k=3)
            assert found["workspace"] == "default" and found["mode"] == "graph"
            kessler = next(p for p in found["passages"] if p["title"] == "Maria Kessler")
            assert "Leipzig" in kessler["text"]
            assert kessler["doc_id"] == document_id("people/kessler.md") and kessler["source"] == "people/kessler.md"
            assert kessler["chunk_id"] and kessler["score"] > 0 and {"section", "page", "page_end"} <= set(kessler)
            assert "Maria Kessler" in titles(await call(session, "search", query=QUESTION, mode="naive", top_k=3))
            assert len((await call(session, "search", query=QUESTION, max_context_tokens=60))["passages"]) == 1

            entities = (await call(session, "lookup_entity", name="kessler"))["entities"]
            assert [e["name"] for e in entities] == ["Maria Kessler"]
            around = await call(session, "entity_neighbourhood", entity_id=entities[0]["id"])
            assert around["entity"]["name"] == "Maria Kessler" and "Kessler" in around["entity"]["aliases"]
            assert document_id("people/kessler.md") in around["entity"]["documents"]
            leipzig = next(n for n in around["neighbours"] if n["name"] == "Leipzig")
            assert "born in" in leipzig["keywords"]
            graph = await call(session, "subgraph", entity_id=entities[0]["id"], depth=2, limit=50)
            depths = {node["name"]: node["depth"] for node in graph["nodes"]}
            assert depths["Maria Kessler"] == 0 and depths["Leipzig"] == 1 and max(depths.values()) == 2
            assert all(edge["source"] in {n["id"] for n in graph["nodes"]} for edge in graph["edges"])

            assert [r.uri for r in (await session.list_resources()).resources] == ["graphdex://stats"]
            templates = (await session.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["graphdex://workspaces/{workspace}/stats"]
            counts = await stats(session)
            assert counts["workspace"] == "default" and counts["nodes"]["Document"] == 4 and counts["vectors"]["Chunk"] == 4
            assert (await stats(session, "graphdex://workspaces/default/stats"))["nodes"] == counts["nodes"]

    run(test)


@pytest.mark.e2e
def test_stdio_bad_arguments_are_tool_errors_and_the_session_goes_on(film_index):
    async def test() -> None:
        async with stdio_session(film_index) as session:
            assert "'naive', 'local', 'global', 'hybrid' or 'graph'" in await refused(session, "search", query=QUESTION, mode="psychic")
            assert "at least 1 character" in await refused(session, "search", query="")
            assert "the query is empty" in await refused(session, "search", query="  \n ")
            assert "at most 4000 characters" in await refused(session, "search", query="why " * 1001)
            assert "less than or equal to 200" in await refused(session, "search", query=QUESTION, top_k=1000)
            assert "no document 'doc-0000'" in await refused(session, "document_status", document_id="doc-0000")
            assert "no document 'doc-0000'" in await refused(session, "delete_document", document_id="doc-0000")
            assert "no entity 'ent-0000'" in await refused(session, "entity_neighbourhood", entity_id="ent-0000")
            assert "no entity 'ent-0000'" in await refused(session, "subgraph", entity_id="ent-0000")
            assert "invalid workspace name 'No Such Place'" in await refused(session, "search", query=QUESTION, workspace="No Such Place")
            assert "no workspace 'elsewhere'" in await refused(session, "lookup_entity", name="kessler", workspace="elsewhere")
            # the documents' limits are the REST API's (and `graphdex ingest`'s)
            assert "at most 1000 characters" in await refused(session, "add_documents", documents=[{**BLED, "title": "t" * 1001}])
            assert "text is blank" in await refused(session, "add_documents", documents=[{**BLED, "text": "   "}])
            assert "NUL characters" in await refused(session, "add_documents", documents=[{**BLED, "text": "a\x00b"}])
            nested: dict[str, Any] = {}
            for _ in range(40):
                nested = {"deeper": nested}
            assert "nested more than 32 levels" in await refused(session, "add_documents", documents=[{**BLED, "metadata": nested}])
            assert "at least 1 item" in await refused(session, "add_documents", documents=[])
            with pytest.raises(MCPError, match="no workspace 'elsewhere'"):
                await session.read_resource("graphdex://workspaces/elsewhere/stats")
            # nothing was queued by the refused calls, and the session still answers
            assert (await stats(session))["queue"] == {"pending": 0, "processing": 0, "done": 0, "failed": 0, "deleting": 0}
            assert "Maria Kessler" in titles(await call(session, "search", query=QUESTION, top_k=3))

    run(test)


@pytest.mark.e2e
def test_stdio_add_status_delete_in_the_workspace_it_serves(film_index):
    """`graphdex mcp --workspace notes`: documents added without naming a workspace go to notes, are indexed by the
    process's own worker, found there and only there, and deleted again."""
    create_workspace(Layout(Settings(data_dir=film_index)), "notes")

    async def test() -> None:
        async with stdio_session(film_index, "--workspace", "notes") as session:
            submitted = (await call(session, "add_documents", documents=[BLED]))
            assert submitted["workspace"] == "notes"
            [doc] = submitted["documents"]
            assert doc["id"] == document_id("wiki/bled") and doc["status"] in ("pending", "processing", "done")
            status = await settled(session, doc["id"])
            assert status["status"] == "done" and status["chunks"] == 1 and status["workspace"] == "notes"
            assert titles(await call(session, "search", query="Which lake is in the Julian Alps?", top_k=3)) == ["Lake Bled"]
            assert "Lake Bled" not in titles(await call(session, "search", query="Which lake is in the Julian Alps?", workspace="default"))
            assert "no document" in await refused(session, "document_status", document_id=doc["id"], workspace="default")

            removal = await call(session, "delete_document", document_id=doc["id"])
            assert removal["status"] == "deleting" and removal["was"] == "done"
            assert f"no document {doc['id']!r}" in await deleted(session, doc["id"])
            assert titles(await call(session, "search", query="Which lake is in the Julian Alps?")) == []

    run(test)


def test_mcp_command_refuses_an_unknown_workspace(tmp_path):
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "mcp", "--workspace", "nowhere"])
    assert result.exit_code == 1
    assert "no workspace 'nowhere'" in result.output


# streamable HTTP -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A real `graphdex serve` with reads and writes behind keys: the admin key, and one for workspace alpha only."""
    data_dir = tmp_path_factory.mktemp("http") / "data"
    with running_server(data_dir, GRAPHDEX_API_KEY="admin-key", GRAPHDEX_API_KEY_FOR_READS="true",
                        GRAPHDEX_WORKSPACE_KEYS='{"key-for-alpha": ["alpha"]}') as server:
        assert httpx.post(f"{server.url}/workspaces", json={"name": "alpha"}, headers=ADMIN).status_code == 201
        yield server.url


def test_http_round_trip_over_the_services_own_queue(service):
    """Documents added over MCP go through the service's queue and writer: REST sees them, and their delete."""
    async def test() -> None:
        async with http_session(service, ADMIN) as session:
            assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS
            submitted = (await call(session, "add_documents", documents=film_documents()))["documents"]
            assert [d["id"] for d in submitted] == [document_id(d.source) for d in FILM_DOCS]
            for doc in submitted:
                assert (await settled(session, doc["id"]))["status"] == "done"
            kessler = document_id("people/kessler.md")
            assert httpx.get(f"{service}/documents/{kessler}", headers=ADMIN).json()["status"] == "done"

            found = await call(session, "search", query=QUESTION, top_k=3)
            assert "Maria Kessler" in titles(found)
            assert "hybrid" in await refused(session, "search", query=QUESTION, mode="everything")
            assert (await call(session, "search", query=QUESTION, mode="hybrid"))["passages"]  # still serving

            assert (await call(session, "delete_document", document_id=kessler))["status"] == "deleting"
            assert "no document" in await deleted(session, kessler)
            assert httpx.get(f"{service}/documents/{kessler}", headers=ADMIN).status_code == 404
            assert "Maria Kessler" not in titles(await call(session, "search", query=QUESTION, top_k=3))

    run(test)


def test_http_keys_follow_the_rest_rules(service):
    # reads need a key here: without one (or with a wrong one) the endpoint answers 401 before reading the request
    for headers in ({}, {"X-API-Key": "not-a-key"}):
        response = httpx.post(f"{service}/mcp", headers=headers, content=b"not even JSON")
        assert response.status_code == 401 and "X-API-Key" in response.json()["detail"]

    async def test() -> None:
        for headers in ({}, {"X-API-Key": "not-a-key"}):
            with pytest.raises(BaseException, match="unhandled errors"):  # the client cannot even initialize
                async with http_session(service, headers):
                    pass
        async with http_session(service, {"Authorization": "Bearer admin-key"}) as session:
            assert (await call(session, "search", query=QUESTION))["workspace"] == "default"
        async with http_session(service, ALPHA) as session:
            # a key scoped to alpha works on alpha only, for reads and writes alike
            assert (await call(session, "search", query=QUESTION, workspace="alpha"))["passages"] == []
            queued = (await call(session, "add_documents", documents=[BLED], workspace="alpha"))["documents"]
            assert (await settled(session, queued[0]["id"], workspace="alpha"))["status"] == "done"
            for tool, arguments in (("search", {"query": QUESTION}), ("lookup_entity", {"name": "kessler", "workspace": "default"}),
                                    ("add_documents", {"documents": [BLED]}), ("document_status", {"document_id": queued[0]["id"]})):
                assert "not allowed on workspace 'default'" in await refused(session, tool, **arguments)
            with pytest.raises(MCPError, match="not allowed on workspace 'default'"):
                await session.read_resource("graphdex://stats")
            assert (await stats(session, "graphdex://workspaces/alpha/stats"))["nodes"]["Document"] == 1
        # nothing the refused calls sent reached the default workspace
        assert httpx.get(f"{service}/documents/{document_id('wiki/bled')}", headers=ADMIN).status_code == 404

    run(test)


@pytest.fixture
def write_keyed_service(make_workspace):
    """The app under uvicorn in a thread, with a key for writes only (reads are open)."""
    app = create_app(workspace=make_workspace("write-keyed", extract_workers=0, api_key="admin-key"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def test_http_writes_need_the_key_when_reads_are_open(write_keyed_service):
    async def test() -> None:
        async with http_session(write_keyed_service) as session:
            assert (await call(session, "search", query=QUESTION))["passages"] == []
            assert "missing or wrong API key" in await refused(session, "add_documents", documents=[BLED])
            assert "missing or wrong API key" in await refused(session, "delete_document", document_id=document_id("wiki/bled"))
        async with http_session(write_keyed_service, ADMIN) as session:
            [doc] = (await call(session, "add_documents", documents=[BLED]))["documents"]
            assert (await settled(session, doc["id"]))["status"] == "done"

    run(test)


def test_http_refuses_numbers_json_does_not_have_as_a_parse_error(make_workspace):
    """NaN, Infinity and 1e400 are no more JSON over MCP than over REST: the request is refused as the transport
    refuses any body that is not JSON (400, JSON-RPC parse error), with a message naming the number."""
    call_template = ('{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add_documents", "arguments": '
                     '{"documents": [{"text": "A text of a few words.", "source": "nan#%d", "metadata": {"score": %s}}]}}}')
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    # the SDK refuses Host headers other than this machine (DNS rebinding protection)
    with TestClient(create_app(workspace=make_workspace("mcp-numbers", extract_workers=0)), base_url="http://127.0.0.1:8000") as client:
        for n, number in enumerate(NOT_JSON_NUMBERS):
            response = client.post("/mcp", content=call_template % (n, number), headers=headers)
            assert response.status_code == 400, f"{number}: {response.status_code} {response.text[:300]}"
            error = response.json()["error"]
            assert error["code"] == PARSE_ERROR and number in error["message"], error
        assert client.get("/documents").json()["total"] == 0
        accepted = client.post("/mcp", content=call_template % (99, "1.5e308"), headers=headers)
        assert accepted.status_code == 200 and not accepted.json()["result"]["isError"], accepted.text[:500]
