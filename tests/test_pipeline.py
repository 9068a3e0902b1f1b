"""Incremental semantics: no-op re-ingest, replaced documents, exact delete, and recovery of the vectors."""

import json

import numpy as np
import pytest

from graphdex.common.ids import document_id
from graphdex.graph.model import SEARCHABLE_TYPES, NodeType
from graphdex.graph.store import StoreError
from graphdex.ingest.documents import SourceDocument
from tests.conftest import FILM_DOCS, as_documents
from tests.helpers import assert_same, snapshot


@pytest.fixture
def corpus(sample_records):
    a = FILM_DOCS[:2] + as_documents(sample_records[:40])
    b = FILM_DOCS[2:] + as_documents(sample_records[40:70])
    return a, b


@pytest.mark.e2e
def test_ingest_builds_every_node_type(make_workspace, corpus, store_kind):
    workspace = make_workspace(store=store_kind)
    report = workspace.indexer.ingest(corpus[0] + corpus[1])
    assert report.documents_added == len(corpus[0]) + len(corpus[1])
    counts = workspace.store.counts()
    for type_ in ("Document", "Chunk", "Entity", "Relation", "Community"):
        assert counts["nodes"][type_] > 0, type_
    for type_ in ("HAS_CHUNK", "MENTIONS", "EVIDENCES", "RELATED_TO", "CONNECTS", "IN_COMMUNITY"):
        assert counts["edges"][type_] > 0, type_
    kessler = workspace.store.get_nodes([_entity(workspace, "Maria Kessler")]).popitem()[1]
    assert kessler.props["type"] == "PERSON"
    assert set(kessler.props["documents"]) == {document_id("people/kessler.md"), document_id("films/harbor.md"), document_id("people/brandt.md")}
    assert all(c.split(":")[0] in kessler.props["documents"] for c in kessler.props["chunks"])
    # "Kessler studied painting..." is the same person, in the document that names her in full
    assert "Kessler" in kessler.props["aliases"] and not workspace.store.get_nodes([_entity(workspace, "Kessler")])
    assert workspace.vectors.counts() == {t: counts["nodes"][t] for t in ("Chunk", "Entity", "Relation", "Community")}


def _entity(workspace, name: str) -> str:
    from graphdex.common.ids import entity_id
    from graphdex.common.resolution import normalize_key

    return entity_id(normalize_key(name))


def test_reingesting_identical_content_is_a_no_op(make_workspace, corpus, store_kind):
    workspace = make_workspace(store=store_kind)
    workspace.indexer.ingest(corpus[0])
    before = snapshot(workspace)
    version = workspace.store.version
    report = workspace.indexer.ingest(corpus[0])
    assert report.documents_unchanged == len(corpus[0])
    assert report.documents_added == report.documents_replaced == report.chunks == 0
    assert workspace.store.version == version, "nothing may be written"
    assert_same(before, snapshot(workspace))


def test_changed_document_replaces_its_old_version(make_workspace, corpus, store_kind):
    workspace = make_workspace(store=store_kind)
    workspace.indexer.ingest(corpus[0])
    changed = SourceDocument("films/harbor.md", "The Harbor Lights", "The Harbor Lights is a 1931 drama film directed by Otto Weiss.")
    report = workspace.indexer.ingest([changed])
    assert report.documents_replaced == 1 and report.documents_added == 0
    reference = make_workspace("reference", store=store_kind)
    reference.indexer.ingest([changed if d.source == "films/harbor.md" else d for d in corpus[0]])
    assert_same(snapshot(reference), snapshot(workspace), communities="valid")
    assert workspace.store.get_nodes([_entity(workspace, "Otto Weiss")])


def test_a_changed_document_embeds_only_its_new_texts(make_workspace, sample_records, monkeypatch):
    """Its old version is taken out first; the vectors of the texts that come back unchanged (most chunks and names)
    are reused, not embedded again, and the index still equals a clean build of the new version."""
    long_text = "\n\n".join(r["text"] for r in sample_records[:12])
    old = SourceDocument("long.md", "Long", long_text)
    new = SourceDocument("long.md", "Long", long_text + " Its last sentence was added by an editor in 1999.")
    workspace = make_workspace()
    workspace.indexer.ingest([old])
    embedder = workspace.indexer.target.embedder
    embedded: list[str] = []
    real_embed = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda texts: (embedded.extend(texts), real_embed(texts))[1])
    assert workspace.indexer.ingest([new]).documents_replaced == 1
    monkeypatch.undo()
    chunks = workspace.store.counts()["nodes"]["Chunk"]
    assert chunks >= 4, "the document spans several chunks"
    assert embedded and len(set(embedded)) == len(embedded), "each distinct text embedded once"
    assert sum(1 for t in embedded if "added by an editor" in t) == 1
    assert len(embedded) < chunks, f"{len(embedded)} texts embedded again for a one-sentence change"
    assert not workspace.indexer.target.recycled, "recycled vectors do not outlive the operation"
    reference = make_workspace("reference")
    reference.indexer.ingest([new])
    assert_same(snapshot(reference), snapshot(workspace), communities="valid")


def test_delete_is_exact(make_workspace, corpus, store_kind):
    a, b = corpus
    only_a = make_workspace("only-a", store=store_kind)
    only_a.indexer.ingest(a)
    both = make_workspace("both", store=store_kind)
    both.indexer.ingest(a)
    both.indexer.ingest(b)
    assert both.store.counts() != only_a.store.counts()
    for doc in b:
        both.maintenance.delete_document(doc.source)
    assert_same(snapshot(only_a), snapshot(both), communities="valid")


def test_delete_by_id_and_unknown_document(make_workspace, store_kind):
    workspace = make_workspace(store=store_kind)
    workspace.indexer.ingest(FILM_DOCS)
    report = workspace.maintenance.delete_document(document_id("people/brandt.md"))
    assert report.chunks == 1 and report.nodes_updated > 0, "Maria Kessler is shared and must only lose support"
    with pytest.raises(KeyError):
        workspace.maintenance.delete_document("no-such-document")


def test_state_survives_reopen_and_repair_fixes_interrupted_vectors(make_workspace, corpus, store_kind):
    """Vector files kept beside the graph (hnswlib; with Neo4j, ``neo4j_vectors=local``) can lag the graph after a
    crash; vectors kept in Neo4j are written in the graph's own transaction and cannot (test_vector_index.py)."""
    local = {"neo4j_vectors": "local"} if store_kind == "neo4j" else {}
    workspace = make_workspace("data", store=store_kind, **local)
    workspace.indexer.ingest(corpus[0])
    expected = snapshot(workspace)
    workspace.close()
    # simulate a crash after the graph write but before the vector save: drop some vectors, add a stray one
    reopened = make_workspace("data", store=store_kind, **local)
    entities = sorted(reopened.vectors[NodeType.ENTITY].ids())[:5]
    reopened.vectors[NodeType.ENTITY].delete(entities)
    reopened.vectors[NodeType.CHUNK].add(["stray"], np.ones((1, 384), dtype=np.float32) / np.sqrt(384))
    reopened.vectors.save()
    reopened.close()
    recovered = make_workspace("data", store=store_kind, **local)
    assert recovered.maintenance.recover() == 0, "repair already ran when the indexer opened"
    assert_same(expected, snapshot(recovered))


def test_a_start_rebuilds_once_the_vectors_an_older_graphdex_left_holding_an_id_twice(make_workspace):
    """Issue 23: before the fix, replacing a vector could leave its old copy under the same label (searchable, and
    the one a reload may map the id to). An index written then (its pointer says nothing of the check) is checked at
    the writer's next start: the ids held twice are embedded again in a rebuilt index, and the check is not repeated."""
    workspace = make_workspace("data")
    workspace.indexer.ingest(FILM_DOCS)
    expected = snapshot(workspace)
    workspace.close()
    damaged = make_workspace("data")
    entities = damaged.vectors[NodeType.ENTITY]
    victim, spare = sorted(entities.ids())[:2]
    spare_vector, spare_digest = entities.get([spare]), entities.digests()[spare]
    entities.delete([spare])  # a free slot
    wrong = np.ones((1, 384), dtype=np.float32) / np.sqrt(384)
    entities._index.add_items(wrong, [entities._label_of[victim]], replace_deleted=True)  # the older replace
    entities.add([spare], spare_vector, [spare_digest])
    assert entities.shadowed_ids() == [victim]
    entities._based = False  # written whole (a delta would hold the ids changed through add and delete only)
    damaged.vectors.save()
    damaged.close()
    pointer = damaged.vectors._dir / "current.json"
    written = json.loads(pointer.read_text())
    del written["shadow_free"]  # as an older graphdex wrote it
    pointer.write_text(json.dumps(written))

    repaired = make_workspace("data")
    assert repaired.maintenance.recover() == 0, "repair already ran when the indexer opened"
    assert all(repaired.vectors[t].shadowed == 0 for t in SEARCHABLE_TYPES)
    assert json.loads(pointer.read_text())["shadow_free"] is True
    assert_same(expected, snapshot(repaired))
    repaired.close()
    again = make_workspace("data")
    again.maintenance.recover()
    assert again.vectors._loaded == {}, "checked once: a later start loads no index"


@pytest.mark.e2e
def test_a_clean_reopen_loads_no_vector_index(make_workspace, monkeypatch):
    """Without the dirty marker, opening the writer side compares counts (the vectors' from their pointer) and loads
    no index; ``stats`` loads neither an index nor the embedder."""
    from graphdex.api.workspace import Workspace
    from graphdex.graph.hnsw_index import HnswVectorIndex

    workspace = make_workspace("data")
    workspace.indexer.ingest(FILM_DOCS)
    workspace.close()
    loads: list[str] = []
    original = HnswVectorIndex.load.__func__
    monkeypatch.setattr(HnswVectorIndex, "load", classmethod(lambda cls, path, *args: loads.append(path.name) or original(cls, path, *args)))
    reopened = make_workspace("data")
    assert reopened.maintenance.recover() == 0
    counts = reopened.store.counts()["nodes"]
    assert reopened.vectors.counts() == {t: counts[t] for t in ("Chunk", "Entity", "Relation", "Community")}
    assert loads == [], "a clean reopen and its counts load no index"
    fresh = Workspace(reopened.settings)  # as the CLI opens it: nothing injected
    try:
        assert fresh.stats()["vectors"] == reopened.vectors.counts()
        assert loads == [] and "embedder" not in fresh.__dict__ and "nlp" not in fresh.__dict__
    finally:
        fresh.close()


def test_empty_documents_are_reported_not_indexed(make_workspace):
    workspace = make_workspace()
    report = workspace.indexer.ingest([SourceDocument("empty.txt", "Empty", "   \n")])
    assert report.failed == [("empty.txt", "document has no text")]
    assert workspace.store.counts()["nodes"]["Document"] == 0


def test_both_stores_hold_the_same_graph(make_workspace, corpus, neo4j_server):
    embedded = make_workspace("embedded", store="embedded")
    server = make_workspace("server", store="neo4j")
    for workspace in (embedded, server):
        workspace.indexer.ingest(corpus[0])
        workspace.maintenance.delete_document(corpus[0][0].source)
    assert_same(snapshot(embedded), snapshot(server))


def test_many_small_write_batches_build_the_same_graph(make_workspace, corpus):
    """Batch i+1 is merged while batch i is still being written: the result must not depend on batch boundaries."""
    one = make_workspace("one-batch")
    one.indexer.ingest(corpus[0])
    many = make_workspace("many-batches", write_batch_chunks=3)
    many.indexer.ingest(corpus[0])
    assert_same(snapshot(one), snapshot(many))


class RefusingStore:
    """The real store, except that it refuses (as a server store refuses a value it cannot index) every write that
    carries the document titled ``refused``: what the indexer does then is under test, not the refusal."""

    def __init__(self, store, refused: str) -> None:
        self._store = store
        self._refused = refused

    def __getattr__(self, name):
        return getattr(self._store, name)

    def write(self, nodes=(), edges=(), delete_nodes=(), delete_edges=(), vectors=None) -> None:
        if any(n.type == NodeType.DOCUMENT and n.props.get("title") == self._refused for n in nodes):
            raise StoreError(f"the store cannot hold the document {self._refused!r}")
        self._store.write(nodes, edges, delete_nodes, delete_edges, vectors=vectors)


def test_a_document_the_store_refuses_fails_alone(make_workspace, corpus, store_kind):
    """One write batch holds every document; the store refuses it for one of them: that one fails with the
    store's reason, and the others end exactly as a clean build of them alone."""
    documents = corpus[0][:12]
    refused = documents[5]
    workspace = make_workspace("refusing", store=store_kind)
    workspace.__dict__["store"] = RefusingStore(workspace.store, refused.title)
    report = workspace.indexer.ingest(documents)
    assert [source for source, _ in report.failed] == [refused.source]
    assert "cannot hold the document" in report.failed[0][1]
    assert report.documents_added == len(documents) - 1 and document_id(refused.source) not in report.document_ids
    clean = make_workspace("clean", store=store_kind)
    clean.indexer.ingest([d for d in documents if d is not refused])
    assert_same(snapshot(workspace), snapshot(clean))


def test_an_ingest_stops_its_extraction_workers_before_the_closing_community_refresh(make_workspace, corpus, monkeypatch):
    """The refresh and the save are an operation's peak of memory: idle spaCy processes must not add to it."""
    workspace = make_workspace()
    events: list[str] = []
    extractor = workspace.extractor
    monkeypatch.setattr(extractor, "release_workers", lambda: events.append("release"))
    refresh = workspace.maintenance.refresh_communities
    monkeypatch.setattr(workspace.maintenance, "refresh_communities", lambda **kw: (events.append("refresh"), refresh(**kw))[1])
    workspace.indexer.ingest(corpus[0])
    assert events == ["release", "refresh"]
    events.clear()
    workspace.indexer.ingest(corpus[1], settle=False)
    assert events == [], "an ingest that leaves the refresh to later keeps its workers for the next batch"
    workspace.indexer.settle()
    assert events == ["release", "refresh"]
