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


def graphdex(data_dir: Path, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **SETTINGS, "GRAPHDEX_DATA_DIR": str(data_dir)}
    env.pop("GRAPHDEX_CRASH_AT", None)
    if crash_at:
        env["GRAPHDEX_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-c", "from graphdex.api.cli import app; app()", *args], env=env, capture_output=True, text=True, timeout=600)


def killed(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == -signal.SIGKILL


def clean_build(make_workspace, name: str, documents: list[SourceDocument], tmp_path: Path) -> dict:
    """The reference: the same CLI ingest of the surviving documents, uninterrupted."""
    corpus = write_corpus(tmp_path / f"{name}.jsonl", documents)
    result = graphdex(tmp_path / name, "ingest", str(corpus))
    assert result.returncode == 0, result.stderr
    return snapshot(make_workspace(name))


def restarted(make_workspace, name: str) -> dict:
    workspace = make_workspace(name)
    workspace.maintenance  # opening the writer side is the restart: recovery runs here
    return snapshot(workspace)


@pytest.mark.parametrize("crash_at", [
    "apply.graph_written:1",  # the first batch is in the graph, its vectors are not
    "apply.graph_written:3",  # mid-way, with batches written before it
    "ingest.batch_written:2",
    "ingest.before_communities",  # every batch written, no community layer yet
    "apply.graph_written:6",  # the community layer is written, its vectors are not
    "ingest.communities_written",  # all written, the closing vector save not done
])
def test_a_crash_during_ingest_then_the_same_ingest_again_equals_a_clean_build(make_workspace, documents, tmp_path, crash_at):
    corpus = write_corpus(tmp_path / "corpus.jsonl", documents)
    crashed = graphdex(tmp_path / "crashed", "ingest", str(corpus), crash_at=crash_at)
    assert killed(crashed), f"the crash point {crash_at} was never reached: {crashed.stderr[-2000:]}"
    again = graphdex(tmp_path / "crashed", "ingest", str(corpus))
    assert again.returncode == 0, again.stderr
    assert_same(restarted(make_workspace, "crashed"), clean_build(make_workspace, "clean", documents, tmp_path))


@pytest.mark.parametrize("crash_at", ["ingest.replaced_removed", "apply.graph_written:2", "ingest.communities_written"])
def test_a_crash_while_replacing_a_document_then_the_same_ingest_again_equals_a_clean_build(make_workspace, documents, tmp_path, crash_at):
    first = write_corpus(tmp_path / "first.jsonl", documents)
    assert graphdex(tmp_path / "crashed", "ingest", str(first)).returncode == 0
    changed = [*documents[:-1], SourceDocument(documents[-1].source, documents[-1].title, documents[-1].text + " It was restored in 1990.")]
    second = write_corpus(tmp_path / "second.jsonl", changed)  # the same sources, one with new content
    crashed = graphdex(tmp_path / "crashed", "ingest", str(second), crash_at=crash_at)
    assert killed(crashed), f"the crash point {crash_at} was never reached: {crashed.stderr[-2000:]}"
    assert graphdex(tmp_path / "crashed", "ingest", str(second)).returncode == 0
    assert_same(restarted(make_workspace, "crashed"), clean_build(make_workspace, "clean", changed, tmp_path))


@pytest.mark.parametrize("crash_at", ["apply.graph_written:1", "delete.graph_written", "finish.communities_written"])
def test_a_crash_during_delete_then_a_restart_equals_a_clean_build_without_the_document(make_workspace, documents, tmp_path, crash_at):
    corpus = write_corpus(tmp_path / "corpus.jsonl", documents)
    assert graphdex(tmp_path / "crashed", "ingest", str(corpus)).returncode == 0
    gone = documents[1]  # Maria Kessler: her entity stays (other documents name her) but loses this support
    crashed = graphdex(tmp_path / "crashed", "delete", gone.source, crash_at=crash_at)
    assert killed(crashed), f"the crash point {crash_at} was never reached: {crashed.stderr[-2000:]}"
    survivors = [d for d in documents if d.source != gone.source]
    assert_same(restarted(make_workspace, "crashed"), clean_build(make_workspace, "clean", survivors, tmp_path))
