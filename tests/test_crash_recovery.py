"""Fault injection: the process is killed (SIGKILL) at each step boundary of ingest, replace and delete; after a
restart (and, for ingest, running the same command again) the index equals a clean build of the surviving documents,
node for node, edge for edge and vector for vector."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from graphdex.ingest.documents import SourceDocument
from tests.conftest import FILM_DOCS, as_documents
from tests.test_pipeline import assert_same, snapshot

SETTINGS = {"GRAPHDEX_EXTRACT_WORKERS": "0", "GRAPHDEX_WRITE_BATCH_CHUNKS": "8"}


@pytest.fixture(scope="module")
def documents(sample_records) -> list[SourceDocument]:
    return FILM_DOCS + as_documents(sample_records[:30])


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
    return subprocess.run([sys.executable, "-c", "from graphdex.api.cli import app; app()", *args], env=env, capture_output=True, text=True, timeout=600)


def killed(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def clean_builds() -> dict[tuple[str, tuple[str, ...]], dict]:
    """References already built in this module: many crash points share one."""
    return {}


def clean_build(make_workspace, store: str, documents: list[SourceDocument], tmp_path: Path, built: dict) -> dict:
    """The reference: the same CLI ingest of the surviving documents, uninterrupted."""
    key = (store, tuple(d.source + "\x00" + d.title + "\x00" + d.text for d in documents))
    if key not in built:
        workspace = make_workspace("clean", store=store)
        result = graphdex(workspace, "ingest", str(write_corpus(tmp_path / "clean.jsonl", documents)))
        assert result.returncode == 0, result.stderr
        built[key] = snapshot(workspace)
    return built[key]


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
