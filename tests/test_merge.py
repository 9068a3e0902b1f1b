"""The merge functions on their own, without a store: batches merged against earlier ones equal one pass, and taking
a document's chunks out gives exactly the elements that never saw it."""

from graphdex.common.ids import chunk_id, document_id, entity_id
from graphdex.ingest.chunking import Chunk
from graphdex.ingest.derive import Derivation
from graphdex.ingest.documents import SourceDocument
from graphdex.ingest.extraction import ChunkExtraction, EntityMention, RelationMention
from graphdex.ingest.merge import BatchGraph, PreparedDocument, batch_graph, merge_with_stored, without_chunks

FILM = "The Harbor Lights is a film directed by Maria Kessler."
PERSON = "Maria Kessler was a German director. Kessler was born in Leipzig."


def prepared(source: str, title: str, text: str, mentions: list[tuple[str, str, str]], relations: list[tuple[str, str, str]]):
    doc_id = document_id(source)
    cid = chunk_id(doc_id, 0)
    entities = [EntityMention(key, surface, type_, text) for key, surface, type_ in mentions]
    stated = [RelationMention(a, b, a.title(), b.title(), [keyword], text, "dependency") for a, b, keyword in relations]
    prepared = PreparedDocument(SourceDocument(source, title, text), doc_id, "hash-" + source, [Chunk(0, text, 0, len(text), 12)])
    return prepared, [ChunkExtraction(cid, entities, stated)]


FILM_DOC = prepared("film.md", "The Harbor Lights", FILM,
                    [("the harbor lights", "The Harbor Lights", "WORK_OF_ART"), ("maria kessler", "Maria Kessler", "PERSON")],
                    [("the harbor lights", "maria kessler", "directed by")])
PERSON_DOC = prepared("kessler.md", "Maria Kessler", PERSON,
                      [("maria kessler", "Maria Kessler", "PERSON"), ("maria kessler", "Kessler", "PERSON"), ("leipzig", "Leipzig", "GPE")],
                      [("maria kessler", "leipzig", "born in")])


def merged_in_one(*docs):
    return merge_with_stored(batch_graph(list(docs), "now"), {}, {}, Derivation())


def as_state(nodes, edges, contributions: bool = True) -> tuple[dict, dict]:
    def state(element):
        return (element.props, element.summary, element.contrib if contributions else None)
    return ({i: state(n) for i, n in nodes.items()}, {k: state(e) for k, e in edges.items()})


def test_two_batches_merged_against_the_first_equal_one_batch():
    whole = merged_in_one(FILM_DOC, PERSON_DOC)
    first = merged_in_one(FILM_DOC)
    second_graph = batch_graph([PERSON_DOC], "now")
    second = merge_with_stored(second_graph, first.nodes, first.edges, Derivation())
    nodes = {**first.nodes, **second.nodes}
    edges = {**first.edges, **second.edges}
    # the second batch's elements carry its own contributions only (a store adds them to the first's)
    assert as_state(nodes, edges, contributions=False) == as_state(whole.nodes, whole.edges, contributions=False)
    for i, node in whole.nodes.items():
        assert {**first.nodes.get(i, node).contrib, **second.nodes.get(i, node).contrib} == node.contrib
    assert all(n.contrib.keys() <= set(second_graph.nodes) for n in second.nodes.values())
    kessler = whole.nodes[next(i for i, n in whole.nodes.items() if n.props.get("name") == "Maria Kessler")]
    assert kessler.props["support"] == 2 and kessler.props["aliases"] == ["Kessler", "Maria Kessler"]
    assert kessler.id not in {n.id for n in second.to_embed}, "an entity whose name is unchanged is not re-embedded"


def test_without_a_documents_chunks_the_elements_equal_those_that_never_saw_it():
    both = merged_in_one(FILM_DOC, PERSON_DOC)
    film_only = merged_in_one(FILM_DOC)
    gone = {chunk_id(document_id("kessler.md"), 0)}
    removed = gone | {document_id("kessler.md")}
    supported = [n for n in both.nodes.values() if n.contrib.keys() & gone]
    touched = [e for e in both.edges.values() if e.contrib.keys() & gone or e.source in removed or e.target in removed]
    removal = without_chunks(supported, touched, gone, removed, Derivation())
    deleted = {n.id for n in removal.deleted} | removed
    nodes = {i: n for i, n in both.nodes.items() if i not in deleted}
    nodes.update({n.id: n for n in removal.updated})
    edges = {k: e for k, e in both.edges.items() if e not in touched}
    edges.update({e.key: e for e in removal.kept_edges})
    assert as_state(nodes, edges) == as_state(film_only.nodes, film_only.edges)
    assert set(removal.dropped_edges).isdisjoint(edges)


def test_contributions_have_named_fields():
    graph: BatchGraph = batch_graph([FILM_DOC], "now")
    for contributions in graph.entities.values():
        assert all(set(part) == {"names", "types", "sentence"} for part in contributions.values())
    relation = next(iter(graph.relations.values()))
    assert set(next(iter(relation.values()))) == {"keywords", "first_name", "second_name", "kind", "sentence", "direction"}


def test_a_title_qualified_by_a_place_is_about_the_place_it_names_first():
    town = "West Chicago is a city in DuPage County, Illinois."
    place = prepared("town.md", "West Chicago, Illinois", town,
                     [("west chicago, illinois", "West Chicago, Illinois", "TOPIC"), ("west chicago", "West Chicago", "GPE"),
                      ("dupage county", "DuPage County", "GPE"), ("illinois", "Illinois", "GPE")], [])
    margrave = "Lambert was the Margrave of Tuscany from 929 to 931."
    person = prepared("lambert.md", "Lambert, Margrave of Tuscany", margrave,
                      [("lambert", "Lambert", "PERSON"), ("margrave of tuscany", "Margrave of Tuscany", "CONCEPT"), ("tuscany", "Tuscany", "GPE")], [])
    graph = batch_graph([place, person], "2026-01-01")
    assert graph.nodes[document_id("town.md")].props["about"] == entity_id("west chicago")
    assert graph.nodes[document_id("lambert.md")].props.get("about") != entity_id("lambert"), "a qualifier that is no place keeps the title whole"
    unnamed = prepared("other.md", "Springfield, Oregon", "A small town with a mill.", [("mill", "mill", "CONCEPT")], [])
    assert batch_graph([unnamed], "2026-01-01").nodes[document_id("other.md")].props.get("about") is None
