"""Helpers the test modules share: index snapshots and their comparison, the clean CLI build a crashed or served
index must equal, and a real `graphdex serve` process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import numpy as np
from fastapi.testclient import TestClient

from graphdex.graph.model import SEARCHABLE_TYPES, Edge, EdgeType, Node, NodeType
from graphdex.ingest.community_description import describe_community
from graphdex.ingest.community_layer import CommunityPolicy
from graphdex.ingest.derive import embedding_text
from graphdex.ingest.documents import SourceDocument
from graphdex.ingest.target import text_digest
from tests.conftest import REPO

VOLATILE = {"ingested_at"}


def snapshot(workspace) -> dict:
    """Every node, edge and vector of a workspace, in a comparable form (with the digests of the texts the
    Community vectors were made from, and the community policy, for ``assert_valid_communities``)."""
    store = workspace.store
    nodes = {}
    for type_ in NodeType:
        for node in store.iter_nodes(type_):
            nodes[node.id] = (str(node.type), {k: v for k, v in node.props.items() if k not in VOLATILE}, node.contrib, node.summary)
    edges = {edge.key: (edge.props, edge.contrib, edge.summary) for edge in store.iter_edges()}
    vectors = {}
    for type_ in SEARCHABLE_TYPES:
        index = workspace.vectors[type_]
        ids = sorted(index.ids())
        vectors[str(type_)] = (ids, index.get(ids))
    policy = CommunityPolicy(workspace.settings.community_resolution, workspace.settings.community_min_size, workspace.settings.community_max_size)
    return {"nodes": nodes, "edges": edges, "vectors": vectors, "community_digests": workspace.vectors[NodeType.COMMUNITY].digests(),
            "community_drift": _community_drift(workspace, vectors[str(NodeType.COMMUNITY)]),
            "community_min_size": policy.min_size, "community_max_size": policy.max_size}


def _community_drift(workspace, stored: tuple[list[str], np.ndarray]) -> dict[str, float]:
    """1 - cosine between each stored Community vector and a fresh embedding of its node's current text: the digests
    say which text a vector was made for, this says the vector really is that text's (issue 23: a vector index kept an
    older vector under a current digest)."""
    ids, vectors = stored
    if not ids:
        return {}
    found = workspace.store.get_nodes(ids, contributions=False)
    rows = [row for row, node_id in enumerate(ids) if node_id in found]
    present = [ids[row] for row in rows]
    fresh = workspace.embedder.embed([embedding_text(found[i]) for i in present])
    return dict(zip(present, (1.0 - np.sum(vectors[rows] * fresh, axis=1)).tolist()))


def assert_same(left: dict, right: dict, communities: Literal["exact", "valid"] = "exact") -> None:
    """The two snapshots hold the same index. ``communities="valid"``, for an index built by a history of writes
    against a clean build: the community layer depends on the history (it is updated, never rebuilt), so there
    both layers need only be valid (``assert_valid_communities``) and everything else is still compared exactly."""
    if communities == "valid":
        assert_valid_communities(left)
        assert_valid_communities(right)
        left, right = _without_communities(left), _without_communities(right)
    assert left["nodes"].keys() == right["nodes"].keys()
    for node_id in left["nodes"]:
        assert left["nodes"][node_id] == right["nodes"][node_id], node_id
    assert left["edges"] == right["edges"]
    assert left["vectors"].keys() == right["vectors"].keys()
    for type_, (ids, vectors) in left["vectors"].items():
        other_ids, other_vectors = right["vectors"][type_]
        assert ids == other_ids, type_
        if ids:
            # the int8 model quantises activations per batch, so batch make-up moves vectors by rounding only
            cosines = np.sum(vectors * other_vectors, axis=1)
            assert cosines.min() > 0.995, (type_, cosines.min())


def assert_valid_communities(snap: dict) -> None:
    """A community layer any refresh may leave: every entity in at most one community; every community of at least
    min_size and at most max_size members, all existing entities; each membership carrying its member's strength on
    the current graph (summed support of its relations) and each Community node's props exactly what
    describe_community gives for its members on the current graph; each Community vector made from its node's
    current text (by digest); no membership of a missing community."""
    nodes, edges = snap["nodes"], snap["edges"]
    entities = {i: Node(i, NodeType.ENTITY, props, contrib, summary) for i, (type_, props, contrib, summary) in nodes.items() if type_ == NodeType.ENTITY}
    communities = {i: Node(i, NodeType.COMMUNITY, props) for i, (type_, props, _, _) in nodes.items() if type_ == NodeType.COMMUNITY}
    links = [(source, target) for source, type_, target in edges if type_ == EdgeType.IN_COMMUNITY]
    assert {t for _, t in links} <= communities.keys(), "a membership of a missing community"
    assert {s for s, _ in links} <= entities.keys(), "a membership of a missing entity"
    twice = [entity for entity, count in Counter(s for s, _ in links).items() if count > 1]
    assert not twice, f"entities in more than one community: {twice[:5]}"
    strength: Counter = Counter()
    for (source, type_, target), (props, contrib, _) in edges.items():
        if type_ == EdgeType.RELATED_TO and source != target:
            support = Edge(source, type_, target, props, contrib).support_count
            strength[source] += support
            strength[target] += support
    stale = [(s, t) for s, t in links if edges[(s, EdgeType.IN_COMMUNITY, t)][0].get("support") != strength[s]]
    assert not stale, f"memberships not carrying their member's strength: {stale[:5]}"
    members: dict[str, list[str]] = {c: [] for c in communities}
    for entity, community in links:
        members[community].append(entity)
    community_of = dict(links)
    internal: dict[str, list[Edge]] = {c: [] for c in communities}
    for (source, type_, target), (props, contrib, _) in sorted(edges.items()):
        if type_ == EdgeType.RELATED_TO and source in community_of and community_of[source] == community_of.get(target):
            internal[community_of[source]].append(Edge(source, EdgeType.RELATED_TO, target, props, contrib))
    for cid, node in communities.items():
        assert snap["community_min_size"] <= len(members[cid]) <= (snap["community_max_size"] or len(members[cid])), (cid, members[cid])
        assert node.props == describe_community(sorted(members[cid]), entities, internal[cid], strength), cid
    ids, _ = snap["vectors"][NodeType.COMMUNITY]
    assert ids == sorted(communities), "Community vectors are those of the Community nodes"
    digests = snap["community_digests"]
    stale = [cid for cid, node in communities.items() if digests.get(cid) != text_digest(node)]
    assert not stale, f"Community vectors not made from their node's current text: {stale[:5]}"
    drifted = {cid: drift for cid, drift in snap["community_drift"].items() if drift > 1e-3}
    assert not drifted, f"Community vectors that are not the embedding of their node's text (1 - cosine): {drifted}"


def _without_communities(snap: dict) -> dict:
    return {"nodes": {i: n for i, n in snap["nodes"].items() if n[0] != NodeType.COMMUNITY},
            "edges": {k: e for k, e in snap["edges"].items() if k[1] != EdgeType.IN_COMMUNITY},
            "vectors": {t: v for t, v in snap["vectors"].items() if t != NodeType.COMMUNITY}}


SETTINGS = {"GRAPHDEX_EXTRACT_WORKERS": "0", "GRAPHDEX_WRITE_BATCH_CHUNKS": "8"}


def write_corpus(path: Path, documents: list[SourceDocument]) -> Path:
    path.write_text("".join(json.dumps({"source": d.source, "title": d.title, "text": d.text}) + "\n" for d in documents))
    return path


def environment(workspace) -> dict[str, str]:
    """The GRAPHDEX_ variables that make a CLI process open the same index as ``workspace``."""
    s = workspace.settings
    env = {"GRAPHDEX_DATA_DIR": str(s.data_dir), "GRAPHDEX_STORE": s.store}
    if s.store == "neo4j":
        env.update(GRAPHDEX_NEO4J_URI=s.neo4j_uri, GRAPHDEX_NEO4J_USER=s.neo4j_user, GRAPHDEX_NEO4J_PASSWORD=s.neo4j_password,
                   GRAPHDEX_NEO4J_WORKSPACE=s.neo4j_workspace)
    return env


def graphdex(workspace, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **SETTINGS, **environment(workspace)}
    env.pop("GRAPHDEX_CRASH_AT", None)
    if crash_at:
        env["GRAPHDEX_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-c", "from graphdex.api.cli import run; run()", *args], env=env, capture_output=True, text=True, timeout=600)


def killed(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == -signal.SIGKILL


def clean_build(make_workspace, store: str, documents: list[SourceDocument], tmp_path: Path, built: dict) -> dict:
    """The reference: the same CLI ingest of the surviving documents, uninterrupted."""
    key = (store, tuple(d.source + "\x00" + d.title + "\x00" + d.text for d in documents))
    if key not in built:
        workspace = make_workspace("clean", store=store)
        result = graphdex(workspace, "ingest", str(write_corpus(tmp_path / "clean.jsonl", documents)))
        assert result.returncode == 0, result.stderr
        built[key] = snapshot(workspace)
    return built[key]


def wait_until_settled(client: TestClient, ids: list[str], timeout: float = 120.0) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        states = {i: client.get(f"/documents/{i}").json() for i in ids}
        if all(s["status"] in ("done", "failed") for s in states.values()):
            return states
        assert time.monotonic() < deadline, f"documents still not indexed: {states}"
        time.sleep(0.2)


GRAPHDEX = str(Path(sys.executable).parent / "graphdex")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path  # its stdout and stderr: uvicorn's access log and the service's own


@contextmanager
def running_server(data_dir: Path, **env: str) -> Iterator[Server]:
    port = _free_port()
    log_path = data_dir.parent / f"serve-{port}.log"
    log = open(log_path, "w")
    process = subprocess.Popen([GRAPHDEX, "--data-dir", str(data_dir), "serve", "--port", str(port)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "GRAPHDEX_EXTRACT_WORKERS": "0", **env})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"graphdex serve exited: {log_path.read_text()[-2000:]}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "graphdex serve did not become healthy in 90 s"
            time.sleep(0.3)
        yield Server(url, process, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def wait_settled(url: str, ids: list[str], timeout: float = 180, headers: dict[str, str] | None = None) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        states = {i: httpx.get(f"{url}/documents/{i}", headers=headers).json() for i in ids}
        if all(s.get("status") in ("done", "failed") for s in states.values()):
            return states
        assert time.monotonic() < deadline, states
        time.sleep(0.3)


# NaN, Infinity and -Infinity are JavaScript, not JSON; 1e400 is beyond a 64-bit float and would be read as infinity
NOT_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]


class HeldWorker:
    """Holds the service's ingestion worker inside its next batch: after the claim, before the real indexer runs,
    until released. Deterministic races: a request can be sent exactly while a batch is being indexed."""

    def __init__(self, workspace) -> None:
        self.claimed = threading.Event()
        self.release = threading.Event()
        indexer = workspace.indexer
        real = indexer.ingest

        def held(documents, *args, **kwargs):
            self.claimed.set()
            assert self.release.wait(120), "the test never released the worker"
            return real(documents, *args, **kwargs)

        indexer.ingest = held


def browse_queries() -> list[str]:
    section = re.search(r"<!-- browse-queries.*?-->(.*?)<!-- /browse-queries -->", (REPO / "README.md").read_text(), re.S).group(1)
    return [re.sub(r"^\s+", "", block, flags=re.M).strip() for block in re.findall(r"```cypher\n(.*?)```", section, re.S)]


def make_pdf(path: Path, pages: list[str], *, title: str | None = None, password: str | None = None) -> Path:
    """A PDF with one page per text; an empty text makes a page with only a picture on it, as a scanner does."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
        else:
            pdf.rect(20, 20, 120, 160, style="F")
    if password:
        pdf.set_encryption(owner_password="owner-" + password, user_password=password)
    pdf.output(str(path))
    return path


#: Headless Chromium as the browser tests run it: Debian's package (installed by `make test`), offline.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    import shutil

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "Chromium is missing: `make test` installs it (Debian package chromium)"
    return chromium
