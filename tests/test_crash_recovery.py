"""Fault injection: the process is killed (SIGKILL) at each step boundary of ingest, replace and delete; after a
restart (and, for ingest, running the same command again) the index equals a clean build of the surviving documents,
node for node, edge for edge and vector for vector."""

from __future__ import annotations

import pytest

from graphdex.ingest.documents import SourceDocument
from tests.conftest import FILM_DOCS, as_documents
from tests.helpers import assert_same, clean_build, graphdex, killed, snapshot, write_corpus

pytestmark = pytest.mark.e2e  # graphdex runs as its own process, killed and restarted, with its real models


@pytest.fixture(scope="module")
def documents(sample_records) -> list[SourceDocument]:
    return FILM_DOCS + as_documents(sample_records[:30])


@pytest.fixture(scope="module")
def clean_builds() -> dict[tuple[str, tuple[str, ...]], dict]:
    """References already built in this module: many crash points share one."""
    return {}


def restarted(workspace) -> dict:
    _ = workspace.maintenance  # opening the writer side is the restart: recovery runs here
    return snapshot(workspace)


def stores(points: list[str]) -> list:
    """Every crash point on both stores."""
    return [pytest.param(store, point, id=f"{store}-{point}") for store in ("embedded", "neo4j") for point in points]


@pytest.mark.parametrize("store, crash_at", stores([
    "apply.graph_written:1",  # the first batch is in the graph, its vectors are not
    "apply.graph_written:3",  # mid-way, with batches written before it
    "ingest.batch_written:2",
    "ingest.before_communities",  # every batch written, no community layer yet
    "apply.graph_written:6",  # the community layer is written, its vectors are not
    "ingest.communities_written",  # all written, the closing vector save not done
]))
def test_a_crash_during_ingest_then_the_same_ingest_again_equals_a_clean_build(make_workspace, documents, tmp_path, store, crash_at, clean_builds):
    corpus = write_corpus(tmp_path / "corpus.jsonl", documents)
    workspace = make_workspace("crashed", store=store)
    crashed = graphdex(workspace, "ingest", str(corpus), crash_at=crash_at)
    assert killed(crashed), f"the crash point {crash_at} was never reached: {crashed.stderr[-2000:]}"
    again = graphdex(workspace, "ingest", str(corpus))  # at once: a dead writer's lease must not block it
    assert again.returncode == 0, again.stderr
    assert_same(restarted(workspace), clean_build(make_workspace, store, documents, tmp_path, clean_builds))


@pytest.mark.parametrize("store, crash_at", stores(["ingest.replaced_removed", "apply.graph_written:2", "ingest.communities_written"]))
def test_a_crash_while_replacing_a_document_then_the_same_ingest_again_equals_a_clean_build(make_workspace, documents, tmp_path, store, crash_at, clean_builds):
    workspace = make_workspace("crashed", store=store)
    assert graphdex(workspace, "ingest", str(write_corpus(tmp_path / "first.jsonl", documents))).returncode == 0
    changed = [*documents[:-1], SourceDocument(documents[-1].source, documents[-1].title, documents[-1].text + " It was restored in 1990.")]
    second = write_corpus(tmp_path / "second.jsonl", changed)  # the same sources, one with new content
    crashed = graphdex(workspace, "ingest", str(second), crash_at=crash_at)
    assert killed(crashed), f"the crash point {crash_at} was never reached: {crashed.stderr[-2000:]}"
    assert graphdex(workspace, "ingest", str(second)).returncode == 0
    assert_same(restarted(workspace), clean_build(make_workspace, store, changed, tmp_path, clean_builds))


@pytest.mark.parametrize("store, crash_at", stores(["apply.graph_written:1", "delete.graph_written", "finish.communities_written"]))
def test_a_crash_during_delete_then_a_restart_equals_a_clean_build_without_the_document(make_workspace, documents, tmp_path, store, crash_at, clean_builds):
    workspace = make_workspace("crashed", store=store)
    assert graphdex(workspace, "ingest", str(write_corpus(tmp_path / "corpus.jsonl", documents))).returncode == 0
    gone = documents[1]  # Maria Kessler: her entity stays (other documents name her) but loses this support
    crashed = graphdex(workspace, "delete", gone.source, crash_at=crash_at)
    assert killed(crashed), f"the crash point {crash_at} was never reached: {crashed.stderr[-2000:]}"
    survivors = [d for d in documents if d.source != gone.source]
    assert_same(restarted(workspace), clean_build(make_workspace, store, survivors, tmp_path, clean_builds))


def test_a_delete_killed_after_its_graph_write_run_again_repairs_the_index_and_exits_0(make_workspace, tmp_path):
    """The killed run had removed the document; the rerun repairs vectors and communities, finds nothing left to
    delete and says so with exit code 0: a retrying script sees success, and the index is a clean build's."""
    workspace = make_workspace("crashed")
    assert graphdex(workspace, "ingest", str(write_corpus(tmp_path / "films.jsonl", FILM_DOCS))).returncode == 0
    gone = FILM_DOCS[1]
    assert killed(graphdex(workspace, "delete", gone.source, crash_at="delete.graph_written"))
    again = graphdex(workspace, "delete", gone.source)
    assert again.returncode == 0, again.stderr
    assert "nothing to delete" in " ".join(again.stderr.split()), again.stderr
    survivors = [d for d in FILM_DOCS if d.source != gone.source]
    assert_same(snapshot(workspace), clean_build(make_workspace, "embedded", survivors, tmp_path, {}))
