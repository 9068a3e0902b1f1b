"""Each retrieval mode, on a corpus where the right answer needs the graph."""

import uuid

import pytest

from graphdex.common.ids import entity_id
from graphdex.common.resolution import normalize_key
from graphdex.graph.model import EdgeType, NodeType
from graphdex.ingest.documents import SourceDocument
from graphdex.query.analysis import without_names
from graphdex.query.engine import DOCUMENT_SHARE, FEEDBACK_WEIGHT, MODES, QueryError
from tests.conftest import FILM_DOCS, as_documents, drop_neo4j_workspace

_STATE_HISTORY = " ".join(
    f"In {year} the assembly of Maharashtra passed a law on {topic}, and the chief minister of the state at the time "
    f"defended it before the legislature in Mumbai."
    for year, topic in [(1962, "irrigation"), (1966, "land records"), (1971, "famine relief"), (1976, "urban housing"),
                        (1982, "cooperative banks"), (1986, "road building"), (1991, "industrial zones"),
                        (1995, "rural schools"), (1999, "water boards"), (2004, "public health"), (2009, "forest rights"),
                        (2014, "crop insurance")])
#: a village named with a qualified place ("Maharashtra state") and that place's own article, long enough for chunks
PLACE_DOCS = [
    SourceDocument("places/kolgaon.md", "Kolgaon", "Kolgaon is a small village in Ratnagiri district, Maharashtra state, India. "
                   "It lies on the coast road south of Dapoli."),
    SourceDocument("places/maharashtra.md", "Maharashtra", "Maharashtra is a state in the western peninsular region of India. "
                   "Its capital is Mumbai, the most populous city of the country. " + _STATE_HISTORY + " " + _STATE_HISTORY.replace("law", "budget")),
]


@pytest.fixture(scope="module", params=["embedded", "neo4j"])
def indexed(request, tmp_path_factory, embedder, nlp, sample_records):
    """The same corpus indexed once per graph store; every test below runs on both."""
    from graphdex.api.workspace import Workspace
    from graphdex.common.settings import Settings

    overrides = {}
    if request.param == "neo4j":
        server = request.getfixturevalue("neo4j_server")
        overrides = {"neo4j_uri": server["uri"], "neo4j_user": server["user"], "neo4j_password": server["password"],
                     "neo4j_workspace": f"test-query-{uuid.uuid4().hex[:8]}"}
    workspace = Workspace(Settings(data_dir=tmp_path_factory.mktemp("query"), store=request.param, extract_workers=1, **overrides))
    workspace.__dict__["embedder"] = embedder
    workspace.__dict__["nlp"] = nlp
    workspace.indexer.ingest(FILM_DOCS + PLACE_DOCS + as_documents(sample_records[:60]))
    yield workspace
    workspace.close()
    if request.param == "neo4j":
        drop_neo4j_workspace(request.getfixturevalue("neo4j_server"), overrides["neo4j_workspace"])


def titles(result) -> list[str]:
    return [hit.title for hit in result.chunks]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_returns_cited_chunks(indexed, mode):
    result = indexed.engine.retrieve("Who directed The Harbor Lights?", mode, 5)
    assert result.mode == mode
    assert 0 < len(result.chunks) <= 5
    scores = [hit.score for hit in result.chunks]
    assert scores == sorted(scores, reverse=True)
    for hit in result.chunks:
        assert hit.doc_id and hit.chunk_id.startswith(hit.doc_id) and hit.text and hit.source
    if mode != "global":  # global mode ranks by themes, not by the film's name
        assert "The Harbor Lights" in titles(result)[:2]


def test_local_mode_follows_the_named_entity(indexed):
    result = indexed.engine.retrieve("Tell me about Maria Kessler", "local", 5)
    assert set(titles(result)[:3]) >= {"Maria Kessler"}
    assert any(node.name == "Maria Kessler" and node.type == "Entity" for node in result.nodes)
    assert "Maria Kessler" in result.keywords["low_level"]


def test_graph_mode_reaches_the_second_hop(indexed):
    # the question names only the film; the birthplace is in the director's own document
    result = indexed.engine.retrieve("Where was the director of The Harbor Lights born?", "graph", 3)
    assert "Maria Kessler" in titles(result)


def test_graph_mode_feeds_the_entities_of_its_best_passages_back_as_weak_seeds(indexed):
    engine = indexed.engine
    question = "In which city did the director of The Harbor Lights die?"
    qv = engine.embedder.embed([question])[0]
    seeds = engine._entity_seeds(engine.analyzer.analyze(question), qv)
    seeds.update(engine._recognized_hops(dict(seeds), qv))
    projection = engine.projections.get()
    scores = projection.personalized_pagerank(seeds, engine.ppr_alpha, engine.ppr_iterations, engine.ppr_tolerance)
    engine.feedback_passages = 2
    try:
        feedback = engine._feedback_seeds(projection, scores, seeds, qv)
        engine.feedback_passages = 0
        assert engine._feedback_seeds(projection, scores, seeds, qv) == {}
    finally:
        engine.feedback_passages = indexed.settings.feedback_passages
    # the director's passage ranks among the first two and names where she died: the next hop of the chain
    assert entity_id(normalize_key("Vienna")) in feedback
    assert not feedback.keys() & seeds.keys()
    assert 0 < max(feedback.values()) <= FEEDBACK_WEIGHT * max(seeds.values())


def test_graph_mode_joins_a_qualified_name_to_the_entity_it_qualifies(indexed):
    engine = indexed.engine
    qualified, place, village = (entity_id(normalize_key(n)) for n in ("Maharashtra state", "Maharashtra", "Kolgaon"))
    assert engine._qualified_cores([qualified, place, village, "ent-missing"]) == {qualified: place}
    question = "Who was in charge of the state where Kolgaon is located?"
    hops = engine._recognized_hops({village: 1.0}, engine.embedder.embed([question])[0])
    assert hops.get(place, 0.0) == hops[qualified] > 0  # the village's passage says "Maharashtra state"


def test_graph_mode_gives_each_chunk_a_share_of_what_its_document_received(indexed):
    engine = indexed.engine
    article = next(d for d in engine.store.iter_nodes(NodeType.DOCUMENT) if d.props["title"] == "Maharashtra")
    first, second = sorted(e.target for e in engine.store.edges_of(article.id, [EdgeType.HAS_CHUNK]))[:2]
    village = next(e.target for d in engine.store.iter_nodes(NodeType.DOCUMENT) if d.props["title"] == "Kolgaon"
                   for e in engine.store.edges_of(d.id, [EdgeType.HAS_CHUNK]))
    shared = engine._with_document_share({first: 0.4, second: 0.2, village: 0.3})
    assert shared == pytest.approx({first: 0.4 + DOCUMENT_SHARE * 0.2, second: 0.2 + DOCUMENT_SHARE * 0.4, village: 0.3})


def test_the_question_without_its_names_is_what_a_chains_later_passages_answer(indexed):
    analyze = indexed.engine.analyzer.analyze
    question = "Who was in charge of the state where Kolgaon is located?"
    assert without_names(question, analyze(question)) == "Who was in charge of the state where is located?"
    assert without_names("Who was Kolgaon?", analyze("Who was Kolgaon?")) == "Who was?"
    assert without_names("Kolgaon", analyze("Kolgaon")) == ""  # nothing left to ask
    assert without_names("when was it built", analyze("when was it built")) == ""  # no name to take out


def test_dates_and_numbers_are_no_names_to_look_up(indexed):
    # the extractor makes no entity of them, so the nearest entity by vector ("past years") would stand in
    keywords = indexed.engine.analyzer.analyze("Who did Maria Kessler's team play in the final last year?")
    assert "Maria Kessler" in keywords.low_level
    assert not any("year" in k for k in keywords.low_level)


def test_global_mode_uses_relations_and_communities(indexed):
    result = indexed.engine.retrieve("film directors and their films", "global", 5)
    assert {node.type for node in result.nodes} & {"Relation", "Community"}
    relation = next(node for node in result.nodes if node.type == "Relation")
    assert relation.chunks, "relations cite the chunks that evidence them"


def test_bad_queries_are_rejected_clearly(indexed):
    with pytest.raises(QueryError, match="empty"):
        indexed.engine.retrieve("   ", "hybrid", 5)
    with pytest.raises(QueryError, match="unknown mode 'fast'"):
        indexed.engine.retrieve("x", "fast", 5)
    with pytest.raises(QueryError, match="top_k"):
        indexed.engine.retrieve("x", "naive", 0)


def test_query_on_empty_index_returns_nothing(make_workspace, store_kind):
    workspace = make_workspace("empty", store=store_kind)
    for mode in MODES:
        assert workspace.engine.retrieve("anything at all?", mode, 5).chunks == []


def test_a_fresh_process_loads_what_its_mode_reads_ahead(make_workspace):
    """`graphdex query` loads the mode's vector indexes and the projection on another thread while spaCy loads; only
    those: a graph query does not pay for the Entity index, which it searches only when a name is not found."""
    import threading

    from graphdex.graph.model import NodeType
    from graphdex.query.modes import MODE_INDEXES

    make_workspace("ahead").indexer.ingest(FILM_DOCS)
    fresh = make_workspace("ahead")
    fresh.prepare_query("graph")
    for thread in threading.enumerate():
        if thread.name == "graphdex-prepare-query":
            thread.join(timeout=60)
    assert set(fresh.vectors._loaded) == set(MODE_INDEXES["graph"]) == {NodeType.RELATION, NodeType.CHUNK}
    assert fresh.store._projection._current is not None, "the projection is open"
    assert fresh.engine.retrieve("Who directed The Harbor Lights?", "graph", 3).chunks
